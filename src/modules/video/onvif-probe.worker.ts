import { Agent } from 'node:http';
import { connect, Socket } from 'node:net';
import { parentPort, workerData } from 'node:worker_threads';
import { Cam, type RequestCallback } from 'onvif';
import type { OnvifProbeResult, ProbeAnswer, ProbeFailKind, ProbeJob } from './onvif-probe';

/**
 * One ONVIF probe in a worker thread (started by probeOnvif in onvif-probe.ts, one worker per
 * probe, terminated once it has answered): the `onvif` package's requests and its XML handling
 * (a regular expression quadratic in the answer's length, xml2js) run here, never on the event
 * loop that serves alarms. The package connects through our agent, which connects to the address
 * the main thread checked (job.address, never a name resolved again) and counts every byte an
 * answer brings: past job.maxAnswerBytes the connection is cut and the probe answers 'too_large'
 * before the package has buffered more. The main thread bounds the whole probe in time and the
 * worker's heap (resourceLimits).
 */

const NETWORK = /ECONNREFUSED|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|ECONNRESET|EPIPE|socket hang up|Network timeout|timed out/i;
/** What cameras answer to a bad UsernameToken: SOAP fault ter:NotAuthorized ("Sender not Authorized"), or HTTP 401 with Digest. */
const AUTH = /not ?authori[sz]ed|unauthori[sz]ed|authentication failed|401|FailedAuthentication|InvalidSecurity/i;

type Kind = 'unreachable' | 'auth' | 'not_onvif';

function classify(e: unknown): Kind {
  const msg = e instanceof Error ? `${(e as NodeJS.ErrnoException).code ?? ''} ${e.message}` : String(e);
  if (NETWORK.test(msg)) return 'unreachable';
  if (AUTH.test(msg)) return 'auth';
  return 'not_onvif';
}

const text = (v: unknown): string => (typeof v === 'string' ? v : v == null ? '' : typeof v === 'number' ? String(v) : '');

/** A failed probe: its kind, the ONVIF request it failed at (null before the first), and why — the device's or the library's words, for the log and the audit entry only. */
class Failed extends Error {
  constructor(
    readonly kind: ProbeFailKind,
    why: string,
    public step: string | null = null,
  ) {
    super(why.slice(0, 300));
  }
}

/** An http.Agent whose connections go to `address` only and are cut when one brings more than `maxBytes`. */
function cappedAgent(address: string, maxBytes: number, over: (bytes: number) => void): Agent {
  const agent = new Agent({ keepAlive: false });
  (agent as unknown as { createConnection: (o: { port?: number }, cb?: unknown) => Socket }).createConnection = (o) => {
    const socket = connect({ host: address, port: Number(o.port) });
    let bytes = 0;
    socket.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      if (bytes > maxBytes) {
        socket.destroy();
        over(bytes);
      }
    });
    return socket;
  };
  return agent;
}

export async function runProbe(t: ProbeJob): Promise<OnvifProbeResult> {
  let overflow: ((e: Failed) => void) | undefined;
  const tooLarge = new Promise<never>((_, reject) => (overflow = reject));
  tooLarge.catch(() => undefined);
  const cam = new Cam({
    hostname: t.address,
    port: t.port,
    username: t.username || undefined,
    password: t.password || undefined,
    timeout: t.timeoutMs,
    autoconnect: false,
    preserveAddress: true,
    agent: cappedAgent(t.address, t.maxAnswerBytes, (bytes) =>
      overflow!(new Failed('too_large', `an answer of more than ${t.maxAnswerBytes} bytes (${bytes} so far): cut`)),
    ),
  });
  cam.on('error', () => undefined); // the package emits nothing we need; never let an 'error' event escape

  /** One request as a promise: settled once (the package may call back twice on odd answers), bounded by timeoutMs (connect and whole answer). */
  const step = <T>(name: string, run: (cb: RequestCallback<T>) => void): Promise<T> =>
    Promise.race([
      tooLarge,
      new Promise<T>((resolve, reject) => {
        let done = false;
        const timer = setTimeout(() => settle(new Error(`${name}: Network timeout after ${t.timeoutMs} ms`)), t.timeoutMs + 250);
        const settle = (err: Error | null, data?: T) => {
          if (done) return;
          done = true;
          clearTimeout(timer);
          if (err) reject(Object.assign(err, { step: name }));
          else resolve(data as T);
        };
        try {
          run((err, data) => settle(err, data));
        } catch (e) {
          settle(e as Error);
        }
      }),
    ]);

  const fail = (e: unknown, what: string): never => {
    if (e instanceof Failed) {
      e.step ??= what; // an answer cut for its size fails whichever request was reading it
      throw e;
    }
    throw new Failed(classify(e), e instanceof Error ? e.message : String(e), what);
  };

  // 1. The device's clock (unauthenticated by the standard; the package retries with the account when refused).
  await step<Date>('GetSystemDateAndTime', (cb) => cam.getSystemDateAndTime(cb)).catch((e) => fail(e, 'GetSystemDateAndTime'));
  // 2. Where its media service is: GetServices (Core ≥ 2.0), else GetCapabilities (every Profile S device).
  await step('GetServices', (cb) => cam.getServices(true, cb)).catch(async (e) => {
    if (e instanceof Failed || classify(e) !== 'not_onvif') fail(e, 'GetServices');
    await step('GetCapabilities', (cb) => cam.getCapabilities(cb)).catch((e2) => fail(e2, 'GetCapabilities'));
  });
  // 3. The account is checked here at the latest (GetDeviceInformation needs a user, ONVIF Core §5.9.4.3).
  const info = await step<Record<string, unknown>>('GetDeviceInformation', (cb) => cam.getDeviceInformation(cb)).catch((e) => fail(e, 'GetDeviceInformation'));
  if (!cam.uri?.media && !cam.uri?.media2) fail(new Error('the device offers no media service'), 'GetServices');
  let rawProfiles = await step<Record<string, unknown>[]>('GetProfiles', (cb) => cam.getProfiles(cb)).catch(async (e) => {
    // A device advertising Media2 that fails it (seen in the field): Media1, as the package's connect() does.
    if (e instanceof Failed || !cam.media2Support || !cam.uri?.media || classify(e) !== 'not_onvif') return fail(e, 'GetProfiles');
    cam.media2Support = false;
    return step<Record<string, unknown>[]>('GetProfiles', (cb) => cam.getProfiles(cb)).catch((e2) => fail(e2, 'GetProfiles'));
  });
  rawProfiles = Array.isArray(rawProfiles) ? rawProfiles : rawProfiles ? [rawProfiles] : [];
  const profiles = rawProfiles
    .map((p) => {
      const enc = (p.videoEncoderConfiguration ?? {}) as { encoding?: unknown; resolution?: { width?: unknown; height?: unknown } };
      const n = (v: unknown) => (Number.isFinite(Number(v)) && v !== '' && v != null ? Number(v) : null);
      return {
        token: text((p.$ as { token?: string } | undefined)?.token),
        name: text(p.name),
        encoding: text(enc.encoding),
        width: n(enc.resolution?.width),
        height: n(enc.resolution?.height),
      };
    })
    .filter((p) => p.token);
  if (!profiles.length) fail(new Error('the device has no media profile'), 'GetProfiles');
  const chosen = (t.profileToken && profiles.find((p) => p.token === t.profileToken)) || profiles.find((p) => /^h\.?264$/i.test(p.encoding)) || profiles[0];

  const stream = await step<{ uri?: unknown }>('GetStreamUri', (cb) => cam.getStreamUri({ protocol: 'RTSP', profileToken: chosen.token }, cb)).catch((e) =>
    fail(e, 'GetStreamUri'),
  );
  const streamUri = text(stream?.uri).trim();
  if (!/^rtsps?:\/\//i.test(streamUri)) throw new Failed('no_stream', `GetStreamUri answered ${JSON.stringify(streamUri.slice(0, 200))}`, 'GetStreamUri');
  // Optional in Profile S: a device without one (or refusing it) still gives a playable stream.
  const snap = await step<{ uri?: unknown }>('GetSnapshotUri', (cb) => cam.getSnapshotUri({ profileToken: chosen.token }, cb)).catch((e) => {
    if (e instanceof Failed) throw e;
    return null;
  });
  const snapshotUri = text(snap?.uri).trim();

  return {
    device: {
      manufacturer: text(info?.manufacturer).slice(0, 200),
      model: text(info?.model).slice(0, 200),
      firmwareVersion: text(info?.firmwareVersion).slice(0, 200),
      serialNumber: text(info?.serialNumber).slice(0, 200),
      hardwareId: text(info?.hardwareId).slice(0, 200),
    },
    profiles: profiles.slice(0, 64).map((p) => ({ ...p, token: p.token.slice(0, 200), name: p.name.slice(0, 200), encoding: p.encoding.slice(0, 40) })),
    profileToken: chosen.token.slice(0, 200),
    streamUri: streamUri.slice(0, 2000),
    snapshotUri: /^https?:\/\//i.test(snapshotUri) ? snapshotUri.slice(0, 2000) : '',
    media: cam.media2Support ? 2 : 1,
  };
}

if (parentPort && workerData) {
  const port = parentPort;
  let sent = false;
  const answer = (a: ProbeAnswer) => {
    if (sent) return;
    sent = true;
    port.postMessage(a);
  };
  const failed = (e: unknown): ProbeAnswer =>
    e instanceof Failed
      ? { ok: false, kind: e.kind, step: e.step, why: e.message }
      : { ok: false, kind: 'not_onvif', step: null, why: `probe fault: ${String((e as Error)?.message ?? e).slice(0, 200)}` };
  // A library throwing from a socket callback (an odd answer) ends the probe, not the worker silently.
  process.on('uncaughtException', (e) => answer(failed(e)));
  runProbe(workerData as ProbeJob).then(
    (result) => answer({ ok: true, result }),
    (e) => answer(failed(e)),
  );
}
