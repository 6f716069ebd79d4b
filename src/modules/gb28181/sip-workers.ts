import { Inject, Injectable } from '@nestjs/common';
import { ChildProcess, fork } from 'node:child_process';
import type { Socket as UdpSocket } from 'node:dgram';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { APP_CONFIG, AppConfig } from '../../config/config';
import type { Gb28181Config } from '../../config/sections';
import { GbDeviceStates } from './gb-device-states';
import { sipEvents } from './gb28181.metrics';
import { SipEndpoint } from './sip-endpoint';
import type { FromSipWorker, ReplicaEntry, SipWorkerOptions, ToSipWorker } from './sip-worker';

/** The helper's entry: the built file next to this one, or (under Jest, from src/) the TypeScript source through swc. */
function workerEntry(): { file: string; execArgv: string[] } {
  const js = join(__dirname, 'sip-worker.js');
  if (existsSync(js)) return { file: js, execArgv: [] };
  return { file: join(__dirname, 'sip-worker.ts'), execArgv: ['-r', join(__dirname, '..', '..', '..', 'scripts', 'swc-register.js')] };
}

interface Helper {
  child: ChildProcess;
  ready: boolean;
}

/**
 * The SIP helper processes (gb28181.processes − 1; issue 16 §8), from the primary's side: forks
 * them with the primary's bound UDP socket (sip-worker.ts), keeps their replica of UDP
 * registrations current (every registration change — GbDeviceStates.touch — is sent within a few
 * milliseconds; a helper that does not know a device yet hands its keepalive over, so a stale
 * replica costs a hop, never a wrong answer beyond that window), takes over what they hand over,
 * and restarts a helper that dies. TCP stays with the primary: a connection's messages belong to
 * the process that accepted it.
 */
@Injectable()
export class SipWorkers {
  private readonly cfg: Gb28181Config;
  private helpers: Helper[] = [];
  private running = false;
  private readonly pending = new Set<string>();
  private flushTimer: NodeJS.Timeout | null = null;
  private onKeepalives: (ids: string[]) => void = () => undefined;
  /** Datagrams a helper read and handed over (shouhu_gb28181_events_total{event="helper_handover"}). */
  private readonly handovers = sipEvents.labels('helper_handover');

  constructor(
    @Inject(APP_CONFIG) config: AppConfig,
    private readonly endpoint: SipEndpoint,
    private readonly states: GbDeviceStates,
  ) {
    this.cfg = config.gb28181;
  }

  /** Helpers running and serving (for tests and the log). */
  get serving(): number {
    return this.helpers.filter((h) => h.ready).length;
  }

  /** Forks the helpers on the endpoint's socket; `onKeepalives` gets the device ids of the keepalives they answered. Resolves when all serve. */
  async start(onKeepalives: (ids: string[]) => void): Promise<void> {
    const n = this.cfg.processes - 1;
    if (n <= 0) return;
    const sock = this.endpoint.udpSocket;
    if (!sock) throw new Error('the SIP endpoint is not running');
    this.onKeepalives = onKeepalives;
    this.running = true;
    this.states.onTouch = (id) => this.changed(id);
    await Promise.all(Array.from({ length: n }, () => this.spawn(sock)));
  }

  private spawn(sock: UdpSocket): Promise<void> {
    const { file, execArgv } = workerEntry();
    const child = fork(file, [], { serialization: 'advanced', execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const h: Helper = { child, ready: false };
    this.helpers.push(h);
    const opts: SipWorkerOptions = {
      maxMessageBytes: this.cfg.maxMessageBytes,
      rateLimitPerSecond: this.cfg.rateLimitPerSecond,
      rateLimitBurst: this.cfg.rateLimitBurst,
      deviceRateLimitPerSecond: this.cfg.deviceRateLimitPerSecond,
      deviceRateLimitBurst: this.cfg.deviceRateLimitBurst,
      reportMs: 10,
    };
    return new Promise<void>((resolve, reject) => {
      child.on('message', (m: FromSipWorker) => {
        if (m.t === 'ka') {
          this.endpoint.countRemote(m.ids.length, m.limited, m.dropped);
          if (m.ids.length) sipEvents.inc({ event: 'helper_keepalive' }, m.ids.length);
          if (m.ids.length) this.onKeepalives(m.ids);
        } else if (m.t === 'fwd') {
          this.handovers.inc();
          this.endpoint.inject(Buffer.from(m.b.buffer, m.b.byteOffset, m.b.byteLength), { transport: 'UDP', address: m.a, port: m.p });
        } else if (m.t === 'ready') {
          // Everything registered over UDP so far; changes from now on follow in `flush`.
          this.post(h, { t: 'sync', d: this.snapshot(), full: true });
          h.ready = true;
          resolve();
        }
      });
      child.once('error', reject);
      child.once('exit', (code, signal) => {
        this.helpers = this.helpers.filter((x) => x !== h);
        if (!h.ready) reject(new Error(`SIP helper process exited at start (${signal ?? code})`));
        if (!this.running) return;
        // A helper that died: its share of the socket is read by the others meanwhile; a new one takes its place.
        sipEvents.inc({ event: 'helper_restarted' });
        this.endpoint.warn(`SIP helper process ${child.pid} exited (${signal ?? code}): starting another`);
        const t = setTimeout(() => {
          const s = this.endpoint.udpSocket;
          if (this.running && s) this.spawn(s).catch((e) => this.endpoint.warn(`SIP helper process not restarted: ${(e as Error).message}`));
        }, 1000);
        t.unref();
      });
      this.post(h, { t: 'start', o: opts }, sock);
    });
  }

  private post(h: Helper, m: ToSipWorker, handle?: UdpSocket): void {
    if (!h.child.connected) return;
    if (handle) h.child.send(m, handle);
    else h.child.send(m);
  }

  /** A device's registration changed: the helpers hear of it at the next flush (a few ms). */
  private changed(id: string): void {
    this.pending.add(id);
    this.flushTimer ??= setTimeout(() => this.flush(), 2);
  }

  private flush(): void {
    this.flushTimer = null;
    if (this.pending.size === 0) return;
    const d = [...this.pending].map((id) => this.entry(id));
    this.pending.clear();
    for (const h of this.helpers) if (h.ready) this.post(h, { t: 'sync', d, full: false });
  }

  private entry(id: string): ReplicaEntry {
    const s = this.states.devices.get(id);
    if (!s || !s.registered || !s.peer || s.peer.transport !== 'UDP') return [id, '', 0, 0];
    return [id, s.peer.address, s.peer.port, s.expiresAt];
  }

  private snapshot(): ReplicaEntry[] {
    const out: ReplicaEntry[] = [];
    for (const s of this.states.devices.values())
      if (s.registered && s.peer?.transport === 'UDP') out.push([s.deviceId, s.peer.address, s.peer.port, s.expiresAt]);
    return out;
  }

  /** Stops the helpers (before the primary closes its socket): each reports what it still holds and exits. */
  async stop(): Promise<void> {
    this.running = false;
    this.states.onTouch = null;
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = null;
    this.pending.clear();
    const helpers = this.helpers;
    this.helpers = [];
    await Promise.all(
      helpers.map(
        (h) =>
          new Promise<void>((resolve) => {
            if (h.child.exitCode !== null || h.child.signalCode !== null) return resolve();
            const t = setTimeout(() => h.child.kill('SIGKILL'), 3000);
            h.child.once('exit', () => {
              clearTimeout(t);
              resolve();
            });
            if (h.child.connected) h.child.send({ t: 'stop' } satisfies ToSipWorker);
            else h.child.kill('SIGTERM');
          }),
      ),
    );
  }
}
