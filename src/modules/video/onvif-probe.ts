import { HttpStatus } from '@nestjs/common';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { ErrorCode } from '../../infra/http/error-codes';
import { DomainError } from '../../infra/http/errors';
import { onvifAddress } from './onvif-address';

/** What an ONVIF probe found (the `onvif` package speaks SOAP and WS-Security UsernameToken for us). */
export interface OnvifProbeResult {
  device: { manufacturer: string; model: string; firmwareVersion: string; serialNumber: string; hardwareId: string };
  profiles: { token: string; name: string; encoding: string; width: number | null; height: number | null }[];
  /** The profile whose stream was taken: the one asked for, else the first H.264 one, else the first. */
  profileToken: string;
  streamUri: string;
  /** '' when the device has none (GetSnapshotUri is optional in Profile S) or refused it. */
  snapshotUri: string;
  /** Media service generation used: 1 (Profile S, ver10) or 2 (Profile T, ver20). */
  media: 1 | 2;
}

export interface OnvifTarget {
  host: string;
  port: number;
  username: string;
  password: string;
  profileToken?: string | null;
  /** video.onvifTimeoutMs: each SOAP request, connect and whole answer. */
  timeoutMs: number;
  /** video.onvifProbeMaxMs: the whole probe; past it the worker is terminated, its connections with it. */
  maxMs: number;
  /** video.onvifMaxAnswerBytes: one answer, counted as it arrives. */
  maxAnswerBytes: number;
  /** video.onvifAllowedNetworks (onvif-address.ts). */
  allowedNetworks: readonly string[];
}

/** What the worker is given: the target with the checked address to connect to. */
export type ProbeJob = Omit<OnvifTarget, 'host' | 'maxMs' | 'allowedNetworks'> & { address: string };
export type ProbeFailKind = 'unreachable' | 'auth' | 'not_onvif' | 'no_stream' | 'too_large';
/**
 * The worker's one message. `step`: the ONVIF request that failed (GetDeviceInformation…, null before
 * the first); `why`: what the device or the library said — for the log and the audit entry only.
 */
export type ProbeAnswer = { ok: true; result: OnvifProbeResult } | { ok: false; kind: ProbeFailKind; step: string | null; why: string };

/** The probe worker's heap cap (MB): a real probe uses a few MB; an answer built to blow up xml2js stops here, not in the service. */
export const PROBE_HEAP_MB = 64;
/** Retry-After of a probe refused for video.onvifProbeConcurrency: a probe takes about a second, a stuck one ends by video.onvifProbeMaxMs. */
export const PROBE_RETRY_AFTER_SECONDS = 5;

/**
 * Every answer of a failed probe is in our words: the code, a message of ours naming the configured
 * address, and details of ours (target, the ONVIF request that failed as `step`, the bound that
 * applied). What the device said (a SOAP fault's reason text, a URI it named) or the library made of
 * its answer never goes into it — a camera, or whatever answers at the address, must not write into
 * our API's answers (attack pass: a fault text of up to 300 characters was copied into the message).
 */
export const OnvifErrors = {
  unreachable: (target: string, timeoutMs: number, extra: Record<string, unknown> = {}, ourWhy = 'connection refused, no route, or no answer') =>
    new DomainError(HttpStatus.GATEWAY_TIMEOUT, ErrorCode.VIDEO.ONVIF_UNREACHABLE, `the ONVIF service at ${target} did not answer: ${ourWhy}`, {
      target,
      timeoutMs,
      ...extra,
    }),
  auth: (target: string, extra: Record<string, unknown> = {}) =>
    new DomainError(
      HttpStatus.BAD_GATEWAY,
      ErrorCode.VIDEO.ONVIF_AUTH_FAILED,
      `the camera at ${target} refused the username or password (WS-Security UsernameToken)`,
      { target, ...extra },
    ),
  notOnvif: (target: string, extra: Record<string, unknown> = {}) =>
    new DomainError(HttpStatus.BAD_GATEWAY, ErrorCode.VIDEO.ONVIF_NOT_ONVIF, `${target} does not answer as an ONVIF device`, { target, ...extra }),
  noStream: (target: string, extra: Record<string, unknown> = {}) =>
    new DomainError(HttpStatus.BAD_GATEWAY, ErrorCode.VIDEO.ONVIF_NOT_ONVIF, `the ONVIF device at ${target} gave no RTSP stream URI`, {
      target,
      ...extra,
    }),
  tooLarge: (target: string, maxAnswerBytes: number, extra: Record<string, unknown> = {}) =>
    new DomainError(
      HttpStatus.BAD_GATEWAY,
      ErrorCode.VIDEO.ONVIF_ANSWER_TOO_LARGE,
      `the ONVIF service at ${target} answered more than a camera does (video.onvifMaxAnswerBytes, or the probe's heap)`,
      { target, maxAnswerBytes, heapMb: PROBE_HEAP_MB, ...extra },
    ),
  busy: (max: number) =>
    new DomainError(
      HttpStatus.SERVICE_UNAVAILABLE,
      ErrorCode.VIDEO.ONVIF_PROBE_BUSY,
      `${max} ONVIF probe(s) already run on this server (video.onvifProbeConcurrency): try again shortly`,
      { max, retryAfterSeconds: PROBE_RETRY_AFTER_SECONDS },
    ),
  /** `why` is ours (onvif-address.ts: loopback, link-local…). */
  addressRefused: (target: string, why: string) =>
    new DomainError(HttpStatus.BAD_REQUEST, ErrorCode.VIDEO.ONVIF_ADDRESS_REFUSED, `the ONVIF address ${target} is not probed: ${why}`, { target }),
};

/**
 * A failed probe: the answer (code, message, details) is ours; `deviceSaid` — the device's or the
 * library's words, at most 300 characters — goes to the log and the `onvif_probe_failed` audit entry
 * (camera-media.service.ts), never to the caller.
 */
export class OnvifProbeFailed extends DomainError {
  constructor(
    answer: DomainError,
    readonly step: string | null,
    readonly deviceSaid: string,
  ) {
    super(answer.status, answer.code, answer.message, answer.details);
  }
}

/** The compiled worker script (from the TypeScript sources under jest: the dist/ build `npm test` makes first, as parse-pool.ts). */
function workerScript(): string {
  const here = join(__dirname, 'onvif-probe.worker.js');
  return existsSync(here) ? here : join(__dirname, '..', '..', '..', 'dist', 'modules', 'video', 'onvif-probe.worker.js');
}

/**
 * Asks a camera's ONVIF device service for its device information, media profiles, the RTSP stream
 * URI of one profile and its snapshot URI, through the `onvif` package (SOAP 1.2 and WS-Security
 * UsernameToken PasswordDigest, ONVIF Core §5.12) — in a worker thread (onvif-probe.worker.ts).
 *
 * What a camera (or whatever answers at the address) can do to the service is bounded (attack pass):
 * - the address is checked first (onvif-address.ts: no loopback, link-local, multicast…; only
 *   video.onvifAllowedNetworks), a name resolved once and the checked address connected to;
 * - the package's XML handling is quadratic in an answer's length and buffers it whole: it runs in a
 *   worker with a heap cap (PROBE_HEAP_MB), each answer is cut past video.onvifMaxAnswerBytes as it
 *   arrives (502 VIDEO.ONVIF_ANSWER_TOO_LARGE), and the whole probe ends by video.onvifProbeMaxMs
 *   (504 VIDEO.ONVIF_UNREACHABLE): the worker is terminated and its sockets with it — a camera
 *   trickling an answer keeps nothing open past the API's answer;
 * - each SOAP request has video.onvifTimeoutMs (connect and whole answer);
 * - only a small structured result crosses back.
 * The URIs returned are the device's as it named them; onHost (below) puts them on the configured host.
 */
export async function probeOnvif(t: OnvifTarget): Promise<OnvifProbeResult> {
  const target = `${t.host.includes(':') ? `[${t.host.replace(/^\[|\]$/g, '')}]` : t.host}:${t.port}`;
  const where = await onvifAddress(t.host, t.allowedNetworks);
  if ('refused' in where) throw OnvifErrors.addressRefused(target, where.refused);
  if ('unresolved' in where) throw OnvifErrors.unreachable(target, t.timeoutMs, {}, `the name does not resolve (${where.unresolved})`);
  const job: ProbeJob = {
    address: where.address,
    port: t.port,
    username: t.username,
    password: t.password,
    profileToken: t.profileToken ?? null,
    timeoutMs: t.timeoutMs,
    maxAnswerBytes: t.maxAnswerBytes,
  };
  const answer = await new Promise<ProbeAnswer | { ok: false; kind: 'deadline' | 'heap' | 'fault'; why: string }>((resolve) => {
    const worker = new Worker(workerScript(), { workerData: job, resourceLimits: { maxOldGenerationSizeMb: PROBE_HEAP_MB } });
    let done = false;
    const finish = (a: Parameters<typeof resolve>[0]) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve(a);
      // Whatever it still holds (a trickling answer's socket, a parse in progress) ends with it.
      void worker.terminate();
    };
    const timer = setTimeout(() => finish({ ok: false, kind: 'deadline', why: `no result within ${t.maxMs} ms (video.onvifProbeMaxMs)` }), t.maxMs);
    worker.on('message', (a: ProbeAnswer) => finish(a));
    worker.on('error', (e: Error & { code?: string }) =>
      finish(
        e.code === 'ERR_WORKER_OUT_OF_MEMORY'
          ? { ok: false, kind: 'heap', why: `its answer took more than the probe's ${PROBE_HEAP_MB} MB heap to read` }
          : { ok: false, kind: 'fault', why: e.message },
      ),
    );
    worker.on('exit', (code) => finish({ ok: false, kind: 'fault', why: `probe worker exited (${code})` }));
  });
  if (answer.ok) return answer.result;
  const step = 'step' in answer ? answer.step : null;
  const extra = step ? { step } : {};
  const failed = (e: DomainError) => new OnvifProbeFailed(e, step, answer.why.slice(0, 300));
  switch (answer.kind) {
    case 'unreachable':
      throw failed(OnvifErrors.unreachable(target, t.timeoutMs, extra));
    case 'deadline':
      throw failed(OnvifErrors.unreachable(target, t.timeoutMs, { probeMaxMs: t.maxMs }, `the probe did not end within ${t.maxMs} ms (video.onvifProbeMaxMs)`));
    case 'auth':
      throw failed(OnvifErrors.auth(target, extra));
    case 'no_stream':
      throw failed(OnvifErrors.noStream(target, extra));
    case 'too_large':
    case 'heap':
      throw failed(OnvifErrors.tooLarge(target, t.maxAnswerBytes, extra));
    default:
      throw failed(OnvifErrors.notOnvif(target, extra));
  }
}

const AUTHORITY = /^([a-z][a-z0-9+.-]*:\/\/)([^/?#@\s]*@)?(\[[^\]/?#]*\]|[^/?#:\s]*)(:\d*)?(.*)$/is;
const bareHost = (h: string) => h.replace(/^\[|\]$/g, '').toLowerCase();

/**
 * A URI the device named (GetStreamUri, GetSnapshotUri) put on the host the admin configured: the
 * service sends the camera's account along with what it fetches there (ffmpeg's RTSP, the snapshot
 * GET), so a device must not choose where (attack pass: a stream URI naming another server got the
 * password in clear by RTSP Basic auth). Another host is replaced by onvifHost, port, path and query
 * kept (as preserveAddress does for the service addresses: cameras behind NAT name their inner
 * address); `movedFrom` is the host the device named, null when it was already the configured one.
 */
export function onHost(uri: string, onvifHost: string): { uri: string; movedFrom: string | null } {
  const m = AUTHORITY.exec(uri);
  if (!m || !uri) return { uri, movedFrom: null };
  const [, scheme, , host, port = '', rest] = m;
  if (bareHost(host) === bareHost(onvifHost)) return { uri, movedFrom: null };
  const h = bareHost(onvifHost);
  return { uri: `${scheme}${h.includes(':') ? `[${h}]` : h}${port}${rest}`, movedFrom: host || '(none)' };
}
