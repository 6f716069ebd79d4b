import { Inject, Injectable, Logger } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type Redis from 'ioredis';
import { DataSource } from 'typeorm';
import { APP_CONFIG, AppConfig } from '../../config/config';
import type { LivenessConfig } from '../../config/sections';
import { REDIS, redisKey } from '../../infra/redis/redis.module';
import { type DeviceStatus, DeviceStatusService, WatchedDeviceKind } from '../registry';
import { DeviceTransitionsService, Transition } from './device-transitions.service';
import { RejectedEntry, resolveEntries } from './gateway-heartbeats';
import { IndexedDevice, LivenessIndex, memberOf, parseMember } from './liveness-index';

export interface SweepResult {
  offline: number;
  batches: number;
  overdue: number;
}

/**
 * Atomically takes expired devices out of the deadline set and into the "not online" set, but
 * only those whose deadline is still past: a heartbeat that raced the sweep wins. Returns the
 * claimed members with the deadline they had.
 */
const CLAIM_LUA = `
local out = {}
local now = tonumber(ARGV[1])
for i = 2, #ARGV do
  local s = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if s and tonumber(s) <= now then
    redis.call('ZREM', KEYS[1], ARGV[i])
    redis.call('SADD', KEYS[2], ARGV[i])
    out[#out + 1] = ARGV[i]
    out[#out + 1] = s
  end
end
return out`;

/**
 * Device liveness. Hot path: one ZADD (deadline = now + missed × interval, GT keeps the latest)
 * and one SMISMEMBER against the "not online" set per batch, pipelined; no Postgres unless a
 * device comes back. The sweep (BullMQ scheduler, worker role) pulls expired deadlines in
 * batches and records offline transitions, outages and console events in one transaction per
 * batch. Redis keys:
 *   <prefix>:liveness:deadlines  ZSET member c:<uuid>|a:<uuid>, score = deadline (ms). A score
 *                                with a .5 fraction was seeded at boot, not set by a heartbeat.
 *   <prefix>:liveness:down       SET of members whose recorded status is not online.
 */
@Injectable()
export class DeviceHealthService {
  private readonly logger = new Logger('DeviceHealth');
  readonly index = new LivenessIndex();
  private readonly deadlinesKey: string;
  private readonly downKey: string;
  private lastRefreshAt = 0;
  private lastFullLoadAt = 0;
  /** The index load running (single-flight: one at a time, whoever asked). */
  private refreshing: Promise<void> | null = null;
  /** One more load, after the running one, for the callers of `refreshIndex` that came during it. */
  private followUp: { seed: boolean; done: Promise<void>; resolve: () => void; reject: (e: unknown) => void } | null = null;
  private sweeping: Promise<SweepResult> | null = null;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(REDIS) private readonly redis: Redis,
    @InjectDataSource() private readonly db: DataSource,
    private readonly statuses: DeviceStatusService,
    private readonly transitions: DeviceTransitionsService,
  ) {
    this.deadlinesKey = redisKey(config, 'liveness', 'deadlines');
    this.downKey = redisKey(config, 'liveness', 'down');
  }

  get cfg(): LivenessConfig {
    return this.config.liveness;
  }

  /** Milliseconds of silence after which a device is offline. */
  thresholdMs(d?: Pick<IndexedDevice, 'intervalSec' | 'offlineAfterSec'>): number {
    return this.thresholdMsOf(d?.intervalSec ?? 0, d?.offlineAfterSec ?? 0);
  }

  /**
   * Same, from a keepalive override in seconds (0 = the configured default) or, when set, the
   * silence its GB/T 28181 device reported of itself (HeartBeatInterval × HeartBeatCount, issue 16 §6).
   */
  thresholdMsOf(intervalSec: number, offlineAfterSec = 0): number {
    if (offlineAfterSec > 0) return offlineAfterSec * 1000;
    return (intervalSec || this.cfg.intervalSeconds) * this.cfg.missedBeforeOffline * 1000;
  }

  private bootGraceMs(): number {
    return this.cfg.bootGraceSeconds > 0 ? this.cfg.bootGraceSeconds * 1000 : this.thresholdMs();
  }

  // ---------------------------------------------------------------- index

  /**
   * Loads the registry into the index. `full` rebuilds it (drops removed devices); otherwise
   * only rows changed since the last load. With `seedAt`, devices get a deadline if they have
   * none (seedAt + threshold) and those not recorded online join the "not online" set, so their
   * first heartbeat records the transition.
   */
  async loadIndex(opts: { full?: boolean; seedAt?: number } = {}): Promise<number> {
    const startedAt = Date.now();
    const target = opts.full ? new LivenessIndex(this.index.size) : this.index;
    // A margin covers rows committed late by transactions that started before the last load.
    const since = opts.full || this.lastRefreshAt === 0 ? undefined : new Date(this.lastRefreshAt - 10_000);
    let n = 0;
    for await (const rows of this.statuses.deviceIndexRows({ updatedSince: since })) {
      const p = opts.seedAt !== undefined ? this.redis.pipeline() : null;
      const zadd: (string | number)[] = [this.deadlinesKey, 'NX'];
      const down: string[] = [];
      for (const row of rows) {
        const slot = target.put(row);
        if (p) {
          const m = target.member(slot);
          zadd.push(opts.seedAt! + this.thresholdMsOf(target.intervalSec(slot), target.offlineAfterSec(slot)) + 0.5, m);
          if (row.status !== 'online') down.push(m);
        }
      }
      if (p) {
        p.call('ZADD', zadd);
        if (down.length) p.call('SADD', [this.downKey, ...down]);
        await execOrThrow(p);
      }
      n += rows.length;
    }
    if (opts.full) {
      this.index.replaceWith(target);
      this.lastFullLoadAt = startedAt;
    }
    this.lastRefreshAt = startedAt;
    return n;
  }

  /** Refreshes the index at most once per second (called on a lookup miss); concurrent callers share one load. */
  async refreshOnMiss(): Promise<void> {
    if (Date.now() - this.lastRefreshAt < 1000) return;
    await this.periodicRefresh(false);
  }

  /** Incremental refresh; a full reload every ten periods drops deleted devices. A load already running is shared. */
  periodicRefresh(seed: boolean): Promise<void> {
    return this.refreshing ?? this.startLoad(seed);
  }

  /**
   * A refresh that sees what the caller committed before asking (a device's learned threshold, new
   * cameras): the one load path besides boot — never a `loadIndex` of its own, which would run
   * beside the periodic one (two loads writing the index at once, `lastRefreshAt` moving back).
   * While a load runs (it may have read before the caller's commit), every caller shares one
   * follow-up load that starts after it; `seed` gives new devices a deadline.
   */
  refreshIndex(opts: { seed?: boolean } = {}): Promise<void> {
    if (!this.refreshing) return this.startLoad(!!opts.seed);
    if (!this.followUp) {
      let resolve!: () => void;
      let reject!: (e: unknown) => void;
      const done = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
      this.followUp = { seed: false, done, resolve, reject };
    }
    this.followUp.seed ||= !!opts.seed;
    return this.followUp.done;
  }

  private startLoad(seed: boolean): Promise<void> {
    const run = (async () => {
      try {
        const full = Date.now() - this.lastFullLoadAt > this.cfg.indexRefreshSeconds * 10_000;
        await this.loadIndex({ full, seedAt: seed ? Date.now() : undefined });
      } finally {
        // The follow-up starts here, in the same step that ends this load: no other load can start in between.
        const next = this.followUp;
        this.followUp = null;
        this.refreshing = null;
        if (next) this.startLoad(next.seed).then(next.resolve, next.reject);
      }
    })();
    this.refreshing = run; // before the load's first await: its finally always runs later
    return run;
  }

  /**
   * Boot of the process that sweeps: every registered device without a deadline gets
   * boot + grace, and deadlines that passed while nobody was watching (the system was down) are
   * lifted to boot + grace — a device never heard from since boot is not declared offline
   * before a full threshold has passed (wvp-GB28181-pro #814: false offlines after a restart).
   */
  async seedAtBoot(bootAt = Date.now()): Promise<void> {
    await this.loadIndex({ full: true, seedAt: bootAt - this.thresholdMs() + this.bootGraceMs() });
    const lifted = bootAt + this.bootGraceMs() + 0.5;
    for (;;) {
      const stale = await this.redis.zrange(this.deadlinesKey, '-inf', `(${bootAt}`, 'BYSCORE', 'LIMIT', 0, 10_000);
      if (stale.length === 0) break;
      const args: (string | number)[] = [this.deadlinesKey, 'XX', 'GT'];
      for (const m of stale) args.push(lifted, m);
      await this.redis.call('ZADD', args);
    }
  }

  // ---------------------------------------------------------------- hot path

  /**
   * Records heartbeats of devices by uuid (the entry point for any protocol front end, e.g. the
   * GB/T 28181 SIP server). Unknown ids are returned, not thrown.
   *
   * `keep` (optional) is asked about each id at the moment of the write, in the same synchronous
   * step that sends it to Redis, so a caller's "still up?" decision and the write cannot be
   * separated by anything else: a heartbeat decided earlier (before a caller's `expire`) is either
   * sent before that expire on the same Redis connection (which then lowers it) or not sent at all.
   * Ids it refuses are neither accepted nor unknown.
   */
  async recordHeartbeats(ids: string[], at: Date = new Date(), keep?: (id: string) => boolean): Promise<{ accepted: number; unknown: string[] }> {
    const resolve = () => {
      const found: number[] = [];
      const missing: string[] = [];
      for (const id of ids) {
        if (keep && !keep(id)) continue;
        const s = this.index.slotOf(id);
        if (s >= 0) found.push(s);
        else missing.push(id);
      }
      return { found, missing };
    };
    let r = resolve();
    if (r.missing.length) {
      await this.refreshOnMiss();
      r = resolve();
    }
    // No await between the last resolve (and `keep`) and recordSlots sending its pipeline.
    await this.recordSlots(r.found, at.getTime());
    return { accepted: r.found.length, unknown: r.missing };
  }

  /** Most entries in one gateway batch (`liveness.maxBatchSize`). */
  get maxBatchSize(): number {
    return this.cfg.maxBatchSize;
  }

  /**
   * Records a gateway's batch of heartbeats: entries `{ deviceId, channelId }` (GB/T 28181 ids)
   * or `{ code }` (alarm button). Good entries are accepted; the others come back by index with a
   * reason (malformed, unknown_device, out_of_scope: a gateway bound to a school reports only its
   * devices — `schoolId` null = any school). At most `maxBatchSize` entries (the caller checks).
   */
  async recordGatewayHeartbeats(entries: readonly unknown[], schoolId: string | null, at: Date): Promise<{ accepted: number; rejected: RejectedEntry[] }> {
    const r = await this.resolveFresh(() => resolveEntries(this.index, entries, schoolId));
    await this.recordSlots(r.accepted, at.getTime());
    return { accepted: r.accepted.length, rejected: r.rejected };
  }

  /**
   * Resolves against the index; on a miss, refreshes it (at most once a second) and resolves
   * again — after the await, since the slots of a reloaded index differ.
   */
  private async resolveFresh<R extends { misses: number }>(resolve: () => R): Promise<R> {
    const r = resolve();
    if (r.misses === 0) return r;
    await this.refreshOnMiss();
    return resolve();
  }

  /** True when the liveness index knows the device (uuid); a device it does not know yet gets no deadline from a heartbeat. */
  isIndexed(id: string): boolean {
    return this.index.slotOf(id) >= 0;
  }

  /**
   * O(1) per heartbeat: one pipelined round trip; Postgres only for devices coming back.
   * `slots` are positions in `index`, resolved with no await in between (a full reload swaps
   * the index and renumbers the slots).
   */
  async recordSlots(slots: readonly number[], at: number): Promise<void> {
    if (slots.length === 0) return;
    const index = this.index;
    const zadd: (string | number)[] = new Array(2 + slots.length * 2);
    const members: string[] = new Array(slots.length + 1);
    zadd[0] = this.deadlinesKey;
    zadd[1] = 'GT';
    members[0] = this.downKey;
    const defaultDeadline = at + this.thresholdMsOf(0);
    for (let i = 0; i < slots.length; i++) {
      const m = index.member(slots[i]);
      const interval = index.intervalSec(slots[i]);
      const offlineAfter = index.offlineAfterSec(slots[i]);
      zadd[2 + 2 * i] = interval === 0 && offlineAfter === 0 ? defaultDeadline : at + this.thresholdMsOf(interval, offlineAfter);
      zadd[3 + 2 * i] = m;
      members[i + 1] = m;
    }
    const p = this.redis.pipeline();
    p.call('ZADD', zadd);
    p.call('SMISMEMBER', members);
    const [, flags] = (await execOrThrow(p)) as [unknown, number[]];
    const back: IndexedDevice[] = [];
    for (let i = 0; i < slots.length; i++) if (flags[i] === 1) back.push(index.device(slots[i]));
    if (back.length) await this.markOnline(back, at);
  }

  /**
   * Devices seen again while not online: recorded at once, in the request (it is the rare path).
   * Each is claimed with SREM so concurrent heartbeats record one transition; on failure the
   * claim is given back so the next heartbeat retries.
   */
  private async markOnline(devices: IndexedDevice[], at: number): Promise<void> {
    const unique = [...new Map(devices.map((d) => [d.id, d])).values()];
    const p = this.redis.pipeline();
    for (const d of unique) p.srem(this.downKey, memberOf(d));
    const res = await execOrThrow(p);
    const claimed = unique.filter((_, i) => res[i] === 1);
    if (claimed.length === 0) return;
    const atDate = new Date(at);
    try {
      await this.db.transaction(async (m) => {
        const transitions: Transition[] = [];
        for (const kind of ['camera', 'alarm_device'] as const) {
          const ids = claimed.filter((d) => d.kind === kind).map((d) => d.id);
          if (!ids.length) continue;
          const locked = new Map((await this.statuses.lockDevices(m, kind, ids)).map((r) => [r.id, r]));
          const changed = await this.statuses.setDeviceStatuses(
            m,
            kind,
            ids.map((id) => ({ id, lastSeenAt: atDate })),
            'online',
          );
          for (const id of changed) {
            const row = locked.get(id)!;
            transitions.push({ deviceId: id, kind, schoolId: row.schoolId, from: row.status, to: 'online', at: atDate });
          }
        }
        await this.transitions.applyTransitions(m, transitions, atDate);
      });
    } catch (e) {
      await this.redis.sadd(this.downKey, ...claimed.map(memberOf)).catch(() => undefined);
      this.logger.warn(`recording ${claimed.length} online transition(s) failed, will retry on next heartbeat: ${(e as Error).message}`);
    }
  }

  /**
   * Brings devices' deadlines forward to `at` (e.g. their GB/T 28181 registration ended): the
   * next sweep records them offline through the usual path (transitions, outages, events).
   * Only devices that have a deadline are touched; a later heartbeat pushes it back out.
   */
  async expire(ids: string[], at: Date = new Date()): Promise<void> {
    const members = ids
      .map((id) => this.index.get(id))
      .filter((d): d is IndexedDevice => !!d)
      .map(memberOf);
    if (members.length === 0) return;
    await this.redis.call('ZADD', [this.deadlinesKey, 'XX', ...members.flatMap((m) => [at.getTime(), m])]);
  }

  // ---------------------------------------------------------------- sweep

  /** One sweep at `now`; concurrent calls in this process share the run in progress. */
  sweep(now = Date.now()): Promise<SweepResult> {
    this.sweeping ??= this.runSweep(now).finally(() => (this.sweeping = null));
    return this.sweeping;
  }

  /** One full sweep without sharing a run in progress (tests use it to prove concurrent sweeps are harmless). */
  async runSweep(now: number): Promise<SweepResult> {
    const result: SweepResult = { offline: 0, batches: 0, overdue: 0 };
    const lanes = Math.max(1, this.cfg.sweepParallelism);
    for (;;) {
      const raw = await this.redis.zrange(this.deadlinesKey, '-inf', String(now), 'BYSCORE', 'LIMIT', 0, this.cfg.sweepBatchSize * lanes);
      if (raw.length === 0) break;
      // A mass outage is bound by Postgres writes on one connection; batches of disjoint schools
      // run side by side (they share no device, outage or flapping row, so they cannot deadlock
      // or wait on each other).
      const parts = lanes === 1 ? [raw] : this.splitBySchool(raw, lanes);
      const settled = await Promise.allSettled(parts.filter((p) => p.length).map((p) => this.sweepBatch(p, now)));
      for (const r of settled) if (r.status === 'rejected') throw r.reason;
      for (const r of settled) if (r.status === 'fulfilled') result.offline += r.value;
      result.batches += settled.length;
    }
    result.overdue = await this.transitions.housekeeping(new Date(now));
    return result;
  }

  /** Members split into `n` groups by school (members not in the index go to the first). */
  private splitBySchool(members: string[], n: number): string[][] {
    const parts: string[][] = Array.from({ length: n }, () => []);
    const lane = new Map<string, number>();
    for (const m of members) {
      const s = this.index.slotOf(m.slice(2));
      const school = s < 0 ? '' : this.index.schoolId(s);
      let k = lane.get(school);
      if (k === undefined) lane.set(school, (k = lane.size % n));
      parts[k].push(m);
    }
    return parts;
  }

  /**
   * One batch in one transaction: lock the device rows (so a heartbeat recording the device's
   * return waits for this commit and then sees it offline), claim in Redis what is still
   * expired, update the registry status, record transitions, outages and console events.
   */
  private async sweepBatch(members: string[], now: number): Promise<number> {
    const byKind = { camera: [] as string[], alarm_device: [] as string[] };
    for (const m of members) {
      const { kind, id } = parseMember(m);
      byKind[kind].push(id);
    }
    let claimed: string[] = [];
    try {
      return await this.db.transaction(async (m) => {
        const locked = new Map<string, { schoolId: string; status: DeviceStatus }>();
        for (const kind of ['camera', 'alarm_device'] as const) for (const r of await this.statuses.lockDevices(m, kind, byKind[kind])) locked.set(r.id, r);
        // Members whose device left the registry: drop them, nothing to record.
        const gone = members.filter((mem) => !locked.has(parseMember(mem).id));
        if (gone.length) await this.redis.zrem(this.deadlinesKey, ...gone);
        const candidates = members.filter((mem) => locked.has(parseMember(mem).id));
        if (candidates.length === 0) return 0;
        const out = (await this.redis.eval(CLAIM_LUA, 2, this.deadlinesKey, this.downKey, now, ...candidates)) as string[];
        claimed = out.filter((_, i) => i % 2 === 0);
        const transitions: Transition[] = [];
        for (const kind of ['camera', 'alarm_device'] as const) {
          const changes: { id: string; lastSeenAt: Date | null; deadline: number }[] = [];
          for (let i = 0; i < out.length; i += 2) {
            const pm = parseMember(out[i]);
            if (pm.kind !== kind) continue;
            const score = Number(out[i + 1]);
            const seeded = score % 1 !== 0; // a boot seed, not a heartbeat: last seen is unknown
            changes.push({ id: pm.id, lastSeenAt: seeded ? null : new Date(score - this.thresholdMs(this.index.get(pm.id))), deadline: Math.floor(score) });
          }
          const changed = new Set(await this.statuses.setDeviceStatuses(m, kind, changes, 'offline'));
          for (const c of changes) {
            if (!changed.has(c.id)) continue;
            const row = locked.get(c.id)!;
            transitions.push({ deviceId: c.id, kind, schoolId: row.schoolId, from: row.status, to: 'offline', at: new Date(c.deadline) });
          }
        }
        await this.transitions.applyTransitions(m, transitions, new Date(now));
        return transitions.length;
      });
    } catch (e) {
      // Give the claimed devices back (due now) so the next sweep retries them.
      if (claimed.length) {
        const p = this.redis.pipeline();
        p.call('ZADD', [this.deadlinesKey, 'NX', ...claimed.flatMap((c) => [now, c])]);
        p.call('SREM', [this.downKey, ...claimed]);
        await p.exec().catch(() => undefined);
      }
      throw e;
    }
  }

  // ---------------------------------------------------------------- reads from Redis

  /** Last heartbeat time derived from the deadline (null if none since boot / offline). */
  async lastSeen(devices: { id: string; kind: WatchedDeviceKind }[]): Promise<(Date | null)[]> {
    if (devices.length === 0) return [];
    const scores = (await this.redis.call('ZMSCORE', [this.deadlinesKey, ...devices.map(memberOf)])) as (string | null)[];
    return scores.map((s, i) => {
      if (s === null || Number(s) % 1 !== 0) return null;
      return new Date(Number(s) - this.thresholdMs(this.index.get(devices[i].id)));
    });
  }
}

/** Runs a pipeline and throws the first command error (ioredis reports them per command). */
async function execOrThrow(p: ReturnType<Redis['pipeline']>): Promise<unknown[]> {
  const res = (await p.exec()) ?? [];
  const out: unknown[] = new Array(res.length);
  for (let i = 0; i < res.length; i++) {
    if (res[i][0]) throw res[i][0];
    out[i] = res[i][1];
  }
  return out;
}
