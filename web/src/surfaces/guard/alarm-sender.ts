/**
 * Delivery of one alarm from the guard's phone: the same request, with the same client event id
 * (`Idempotency-Key`), until the server says it has the alarm — so a retry after a lost answer
 * never makes a second incident (the server answers 200 with the incident the first try made).
 *
 * Phases: `sending` (first try in flight) → `received` (the server answered 2xx: the incident is
 * committed) | `retrying` (no answer, a timeout, 5xx or 429: tried again after RETRY_DELAYS_MS) →
 * `failed` (a refusal (4xx) that a retry cannot change, or every retry used up). A failed alarm
 * keeps its key: "try again" sends the same alarm, never a new one.
 */
export type AlarmPhase = 'sending' | 'retrying' | 'received' | 'failed';

/** The body of POST /api/v1/incidents, fixed when the alarm is made (a retry sends it unchanged). */
export interface AlarmBody {
  schoolId: string;
  type: 'intrusion' | 'violence' | 'medical' | 'fire' | 'other';
  location: string;
  note?: string;
  /** The phone's position when the guard allows it (WGS-84 degrees, accuracy in metres): stored with the incident. */
  position?: { latitude: number; longitude: number; accuracyM: number };
}

/** An alarm not yet confirmed by the server (kept in localStorage so a reload resumes it). */
export interface PendingAlarm {
  key: string;
  body: AlarmBody;
  /** ms since epoch, when the guard pressed the button. */
  createdAt: number;
  /** Who raised it (a pending alarm is resumed only by the same user). */
  userId: string;
}

/** What one try came to: the incident, or the error (`transient`: worth trying again). */
export type TryResult<I> = { ok: true; incident: I } | { ok: false; transient: boolean; error: unknown };

/** Waits between tries (ms): about 45 s in all, then `failed` with a manual "try again". */
export const RETRY_DELAYS_MS = [1000, 2000, 4000, 8000, 15000, 15000] as const;
/** A pending alarm older than this is not resent by itself after a reload (the guard decides). */
export const RESUME_MAX_AGE_MS = 10 * 60_000;
/** One try's time limit on the phone's network. */
export const TRY_TIMEOUT_MS = 10_000;

/** A client event id: random, 1–128 of [A-Za-z0-9_.:-] (the server's rule). */
export function newClientEventId(): string {
  return `guard-${crypto.randomUUID()}`;
}

/** A status or error code worth another try: no answer (0), rate limit (429), server trouble (5xx). */
export const isTransientStatus = (status: number): boolean => status === 0 || status === 429 || status >= 500;

/** The alarm's `position` from a geolocation fix, or undefined when it is not a usable one (out of range, not finite). */
export function alarmPosition(p: { latitude: number; longitude: number; accuracy: number } | null): AlarmBody['position'] {
  if (!p || ![p.latitude, p.longitude, p.accuracy].every(Number.isFinite)) return undefined;
  if (Math.abs(p.latitude) > 90 || Math.abs(p.longitude) > 180 || p.accuracy < 0) return undefined;
  return { latitude: Number(p.latitude.toFixed(6)), longitude: Number(p.longitude.toFixed(6)), accuracyM: Math.min(100000, Math.round(p.accuracy * 10) / 10) };
}

export interface DeliverOptions {
  delays?: readonly number[];
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  signal?: AbortSignal;
  onPhase: (phase: AlarmPhase, info: { attempt: number; retryInMs?: number; error?: unknown }) => void;
}

const defaultSleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true });
  });

/**
 * Sends `pending` with `send` (one HTTP try, same key each time) until it is received, refused or
 * the retries are used up. Resolves with the incident, or null when failed or aborted.
 */
export async function deliverAlarm<I>(pending: PendingAlarm, send: (p: PendingAlarm) => Promise<TryResult<I>>, opts: DeliverOptions): Promise<I | null> {
  const delays = opts.delays ?? RETRY_DELAYS_MS;
  const sleep = opts.sleep ?? defaultSleep;
  for (let attempt = 1; ; attempt++) {
    if (opts.signal?.aborted) return null;
    if (attempt === 1) opts.onPhase('sending', { attempt });
    const r = await send(pending);
    if (opts.signal?.aborted) return null;
    if (r.ok) {
      opts.onPhase('received', { attempt });
      return r.incident;
    }
    const wait = delays[attempt - 1];
    if (!r.transient || wait === undefined) {
      opts.onPhase('failed', { attempt, error: r.error });
      return null;
    }
    opts.onPhase('retrying', { attempt, retryInMs: wait, error: r.error });
    await sleep(wait, opts.signal);
  }
}
