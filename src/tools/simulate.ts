import type { INestApplicationContext } from '@nestjs/common';
import type { AppConfig } from '../config/config';
import { DeviceCredentialsService } from '../modules/auth';
import { DeviceStatusService } from '../modules/registry';
import { prng } from './seed/district';

export interface SimulateOptions {
  url: string;
  /** Share of devices that never send (they go offline after the threshold). */
  offline: number;
  /** Share of devices that alternate between silence (past the threshold) and sending. */
  flap: number;
  durationMs: number;
  /** Play only the first N registered devices (default: all cameras and alarm buttons). */
  devices?: number;
  /**
   * A fixed label for the run's gateway credential: earlier credentials with the same label are
   * revoked first, so a simulator started again and again (the demo's `npm start`) keeps one.
   */
  credentialLabel?: string;
  progress?: (line: string) => void;
}

type Entry = { deviceId: string; channelId: string } | { code: string };
interface SimDevice {
  entry: Entry;
  intervalMs: number;
  role: 'normal' | 'offline' | 'flap';
  next: number;
}

/** Parses `60s`, `5m`, `1h` or plain seconds. */
export function parseDuration(s: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(s.trim());
  if (!m) throw new Error(`bad duration: ${s} (e.g. 60s, 5m, 1h)`);
  return Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? 's') as 'ms' | 's' | 'm' | 'h'];
}

/**
 * Plays registered devices sending heartbeats at their interval through the HTTP batch API,
 * as a gateway (a credential created for the run). This is how the demo looks alive.
 */
export async function simulate(ctx: INestApplicationContext, config: AppConfig, opts: SimulateOptions): Promise<void> {
  const say = opts.progress ?? (() => undefined);
  const live = config.liveness;
  const statuses = ctx.get(DeviceStatusService);
  const devices: SimDevice[] = [];
  const random = prng(20260301); // two runs play the same devices the same way
  const start = Date.now();
  outer: for await (const rows of statuses.deviceIndexRows()) {
    for (const r of rows) {
      if (opts.devices !== undefined && devices.length >= opts.devices) break outer;
      const entry: Entry = r.kind === 'camera' ? { deviceId: r.deviceId!, channelId: r.channelId! } : { code: r.code! };
      const intervalMs = (r.keepaliveSeconds ?? live.intervalSeconds) * 1000;
      const x = random();
      const role = x < opts.offline ? 'offline' : x < opts.offline + opts.flap ? 'flap' : 'normal';
      // Everyone reports at once at the start (the demo is online at once), then spread over the interval.
      devices.push({ entry, intervalMs, role, next: start });
    }
  }
  if (devices.length === 0) {
    say('simulate: no cameras or alarm buttons registered (run `npm run seed` first)');
    return;
  }
  const creds = ctx.get(DeviceCredentialsService);
  if (opts.credentialLabel) {
    for (const c of await creds.list({})) if (c.kind === 'gateway' && c.label === opts.credentialLabel && !c.revokedAt) await creds.revoke(c.id);
  }
  const cred = await creds.create({ kind: 'gateway', label: opts.credentialLabel ?? `simulator ${new Date().toISOString()}` });
  const counts = { normal: 0, offline: 0, flap: 0 };
  for (const d of devices) counts[d.role]++;
  say(`simulate: ${devices.length} devices (${counts.offline} silent, ${counts.flap} flapping) → ${opts.url} for ${opts.durationMs / 1000}s`);

  const thresholdMs = (d: SimDevice) => d.intervalMs * live.missedBeforeOffline;
  const stats = { sent: 0, accepted: 0, rejected: 0, requests: 0, failed: 0, latencyMs: 0 };
  const send = async (batch: Entry[]) => {
    const t0 = Date.now();
    try {
      const res = await fetch(`${opts.url.replace(/\/$/, '')}/api/v1/device/heartbeats`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: cred.authorization },
        body: JSON.stringify({ heartbeats: batch }),
      });
      const body = (await res.json()) as { accepted?: number; rejected?: unknown[] };
      if (!res.ok) throw new Error(`HTTP ${res.status} ${JSON.stringify(body).slice(0, 200)}`);
      stats.accepted += body.accepted ?? 0;
      stats.rejected += body.rejected?.length ?? 0;
    } catch (e) {
      stats.failed++;
      if (stats.failed <= 3) say(`simulate: request failed: ${(e as Error).message}`);
    } finally {
      stats.requests++;
      stats.sent += batch.length;
      stats.latencyMs += Date.now() - t0;
    }
  };

  const end = start + opts.durationMs;
  let lastReport = start;
  // At least one round, however short the run.
  do {
    const now = Date.now();
    const due: Entry[] = [];
    for (const d of devices) {
      if (d.next > now) continue;
      if (d.role === 'offline') {
        d.next = Infinity;
        continue;
      }
      due.push(d.entry);
      if (d.role === 'flap' && random() < 0.5)
        d.next = now + thresholdMs(d) + d.intervalMs; // fall silent past the threshold, then return
      else d.next = now + (d.next === start ? random() * d.intervalMs : d.intervalMs);
    }
    const batches: Entry[][] = [];
    for (let i = 0; i < due.length; i += live.maxBatchSize) batches.push(due.slice(i, i + live.maxBatchSize));
    for (let i = 0; i < batches.length; i += 4) await Promise.all(batches.slice(i, i + 4).map(send));
    if (now - lastReport >= 10_000) {
      lastReport = now;
      say(`simulate: ${Math.round((now - start) / 1000)}s sent=${stats.sent} accepted=${stats.accepted} rejected=${stats.rejected} failed=${stats.failed}`);
    }
    await new Promise((r) => setTimeout(r, Math.max(0, Math.min(1000, end - Date.now()))));
  } while (Date.now() < end);
  const secs = (Date.now() - start) / 1000;
  say(
    [
      'simulate: summary',
      `  devices        ${devices.length} (normal ${counts.normal}, silent ${counts.offline}, flapping ${counts.flap})`,
      `  heartbeats     sent ${stats.sent}, accepted ${stats.accepted}, rejected ${stats.rejected}`,
      `  requests       ${stats.requests} (${stats.failed} failed), mean latency ${stats.requests ? Math.round(stats.latencyMs / stats.requests) : 0} ms`,
      `  duration       ${secs.toFixed(1)} s, ${(stats.sent / secs).toFixed(1)} heartbeats/s`,
      `  gateway key    ${cred.keyId} (revoke it with DELETE /api/v1/device-credentials/${cred.id})`,
    ].join('\n'),
  );
}
