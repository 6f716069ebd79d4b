import { Inject, Injectable, Logger } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { APP_CONFIG, AppConfig } from '../../config/config';
import type { LivenessConfig } from '../../config/sections';
import { Cluster } from 'ioredis';
import { QueueService } from '../../infra/queue/queue.service';
import { keySlot, REDIS, type RedisClient, redisKey, taggedKey } from '../../infra/redis/redis.module';
import { type DeviceStatus, DeviceStatusService, WatchedDeviceKind } from '../registry';
import { DeviceTransitionsService, Transition } from './device-transitions.service';
import { RejectedEntry, resolveEntries } from './gateway-heartbeats';
import { IndexedDevice, LivenessIndex, memberOf, parseMember, shardOf } from './liveness-index';

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

/** One liveness shard's two keys: they share a hash tag, so CLAIM_LUA and a pipeline over both stay in one cluster slot. */
export interface Shard {
  deadlines: string;
  down: string;
}

/**
 * Device liveness. Hot path: per shard touched, one ZADD (deadline = now + missed × interval, GT
 * keeps the latest) and one SMISMEMBER against the "not online" set, pipelined; no Postgres unless a
 * device comes back. The sweep (BullMQ scheduler, worker role) pulls expired deadlines in
 * batches and records offline transitions, outages and console events in one transaction per
 * batch. Redis keys, split into liveness.shards shards (a device's shard: shardOf its uuid), each
 * pair under its own hash tag so no single Redis Cluster slot holds the whole fleet:
 *   <prefix>:{<prefix>:liveness:<n>}:deadlines  ZSET member c:<uuid>|a:<uuid>, score = deadline (ms).
 *                                A score with a .5 fraction was seeded at boot, not set by a heartbeat.
 *   <prefix>:{<prefix>:liveness:<n>}:down       SET of members whose recorded status is not online.
 *   <prefix>:liveness:layout     the shard count the keys were written with; the sweeping process's
 *                                boot drops keys of another layout (and of the unsharded one before
 *                                issue 17) and seeds every deadline again, as for a Redis that lost them.
 * Commands on several shards go in one pipeline on a single Redis, one pipeline per shard on a
 * cluster (a cluster pipeline must stay on one node).
 */
@Injectable()
export class DeviceHealthService {
  private readonly logger = new Logger('DeviceHealth');
  readonly index = new LivenessIndex();
  private readonly shards: Shard[];
  private readonly layoutKey: string;
  /** Each shard's Redis Cluster slot (its pair's hash tag). */
  private readonly shardSlots: number[];
  private lastRefreshAt = 0;
  private lastFullLoadAt = 0;
  /** The index load running (single-flight: one at a time, whoever asked). */
  private refreshing: Promise<void> | null = null;
  /** One more load, after the running one, for the callers of `refreshIndex` that came during it. */
  private followUp: { seed: boolean; done: Promise<void>; resolve: () => void; reject: (e: unknown) => void } | null = null;
  private sweeping: Promise<SweepResult> | null = null;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(REDIS) private readonly redis: RedisClient,
    @InjectDataSource() private readonly db: DataSource,
    private readonly statuses: DeviceStatusService,
    private readonly transitions: DeviceTransitionsService,
    private readonly queue: QueueService,
  ) {
    this.shards = shardKeys(config, config.liveness.shards);
    this.layoutKey = redisKey(config, 'liveness', 'layout');
    this.shardSlots = this.shards.map((k) => keySlot(k.deadlines));
  }

  /** The shard of a member (c:<uuid> / a:<uuid>). */
  private shardOfMember(m: string): number {
    return shardOf(m.slice(2), this.shards.length);
  }

  /**
   * Pipelines over shards: one on a single Redis; on a cluster one per master (the shards whose slots
   * it serves, per the client's slot map — a cluster pipeline must stay on one node), or per shard
   * while the slot map is not known yet.
   */
  private pipelines(): ShardPipelines {
    const redis = this.redis;
    if (!(redis instanceof Cluster)) return new ShardPipelines(redis, () => 0);
    return new ShardPipelines(redis, (shard) => redis.slots[this.shardSlots[shard]]?.[0] ?? `shard:${shard}`);
  }

  /** Members grouped by shard (index = shard). */
  private byShard(members: readonly string[]): string[][] {
    const out: string[][] = this.shards.map(() => []);
    for (const m of members) out[this.shardOfMember(m)].push(m);
    return out;
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
   * none (seedAt + threshold). Devices not recorded online join the "not online" set — all of
   * them with `seedAt`, and in every load (any role, the refresh on a heartbeat's miss too) those
   * new to this process's index — in the same pipeline step as they enter the index, so their
   * first heartbeat records the transition. Without it a camera registered after boot stayed
   * `unknown` after its first heartbeats (the hot path checks only that set) until the sweeping
   * role's next seeded refresh and the heartbeat after it: a minute or more (attack pass 3).
   */
  async loadIndex(opts: { full?: boolean; seedAt?: number } = {}): Promise<number> {
    const startedAt = Date.now();
    const target = opts.full ? new LivenessIndex(this.index.size) : this.index;
    // A margin covers rows committed late by transactions that started before the last load.
    const since = opts.full || this.lastRefreshAt === 0 ? undefined : new Date(this.lastRefreshAt - 10_000);
    let n = 0;
    for await (const rows of this.statuses.deviceIndexRows({ updatedSince: since })) {
      const seed = opts.seedAt !== undefined;
      const zadd: (string | number)[][] = this.shards.map((k) => [k.deadlines, 'NX']);
      const down: string[][] = this.shards.map((k) => [k.down]);
      let writes = false;
      for (const row of rows) {
        // Asked of the live index (a full load fills a new one): new here = never resolved by this process's heartbeats.
        const fresh = this.index.slotOf(row.id) < 0;
        const slot = target.put(row);
        if (!seed && !(fresh && row.status !== 'online')) continue;
        const m = target.member(slot);
        const k = this.shardOfMember(m);
        if (seed) zadd[k].push(opts.seedAt! + this.thresholdMsOf(target.intervalSec(slot), target.offlineAfterSec(slot)) + 0.5, m);
        if (row.status !== 'online') down[k].push(m);
        writes = true;
      }
      // No await between the puts above and this pipeline's send (exec sends in the same step): a heartbeat
      // resolving a new device's slot is sent after its SADD on the same connection and finds it not online.
      if (writes) {
        const p = this.pipelines();
        for (let k = 0; k < this.shards.length; k++) {
          if (zadd[k].length > 2) p.call(k, 'ZADD', zadd[k]);
          if (down[k].length > 1) p.call(k, 'SADD', down[k]);
        }
        await p.exec();
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
    await this.dropOtherLayouts();
    await this.loadIndex({ full: true, seedAt: bootAt - this.thresholdMs() + this.bootGraceMs() });
    const lifted = bootAt + this.bootGraceMs() + 0.5;
    for (const shard of this.shards) {
      for (;;) {
        const stale = await this.redis.zrange(shard.deadlines, '-inf', `(${bootAt}`, 'BYSCORE', 'LIMIT', 0, 10_000);
        if (stale.length === 0) break;
        const args: (string | number)[] = [shard.deadlines, 'XX', 'GT'];
        for (const m of stale) args.push(lifted, m);
        await this.redis.call('ZADD', args);
      }
    }
  }

  /**
   * Keys written with another liveness.shards (or the single pair before issue 17) are deleted: their
   * members sit in the wrong shard for this layout. The seeding that follows gives every device a
   * deadline again and the "not online" set from Postgres, as after a Redis that lost them (a device
   * silent since is offline one boot grace later). One DEL per key: they are in different slots.
   */
  private async dropOtherLayouts(): Promise<void> {
    const layout = `sharded:${this.shards.length}`;
    const was = await this.redis.get(this.layoutKey);
    if (was === layout) return;
    const old = /^sharded:(\d+)$/.exec(was ?? '');
    const keys = old
      ? shardKeys(this.config, Number(old[1])).flatMap((k) => [k.deadlines, k.down])
      : [redisKey(this.config, 'liveness', 'deadlines'), redisKey(this.config, 'liveness', 'down')];
    let dropped = 0;
    for (const k of keys) dropped += await this.redis.unlink(k);
    await this.redis.set(this.layoutKey, layout);
    if (dropped) this.logger.log(`liveness keys of layout ${was ?? 'unsharded'} dropped (now ${layout}): deadlines seeded again`);
  }

  /**
   * Devices a protocol front end has just started listening for again (the GB/T 28181 SIP server
   * after a restart): none of them is declared offline before `until` — deadlines earlier than it
   * are lifted to it (a heartbeat since keeps a later one; devices without a deadline are left to
   * the sweeping role's seeding). Unknown ids are skipped. Returns how many were lifted.
   */
  async holdOffline(ids: string[], until: number): Promise<number> {
    let lifted = 0;
    for (let i = 0; i < ids.length; i += 10_000) {
      const byShard = new Map<number, (string | number)[]>();
      for (const id of ids.slice(i, i + 10_000)) {
        const slot = this.index.slotOf(id);
        if (slot < 0) continue;
        const m = this.index.member(slot);
        const k = this.shards.length === 1 ? 0 : this.shardOfMember(m);
        let args = byShard.get(k);
        if (!args) byShard.set(k, (args = [this.shards[k].deadlines, 'XX', 'GT', 'CH']));
        args.push(until + 0.5, m);
      }
      for (const args of byShard.values()) lifted += Number(await this.redis.call('ZADD', args));
    }
    return lifted;
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
    const n = this.shards.length;
    const zadd: (string | number)[][] = new Array(n);
    const members: string[][] = new Array(n);
    /** Per shard, the positions in `slots` of its members, in SMISMEMBER's order. */
    const pos: number[][] = new Array(n);
    const defaultDeadline = at + this.thresholdMsOf(0);
    for (let i = 0; i < slots.length; i++) {
      const m = index.member(slots[i]);
      const k = n === 1 ? 0 : this.shardOfMember(m);
      if (!zadd[k]) {
        zadd[k] = [this.shards[k].deadlines, 'GT'];
        members[k] = [this.shards[k].down];
        pos[k] = [];
      }
      const interval = index.intervalSec(slots[i]);
      const offlineAfter = index.offlineAfterSec(slots[i]);
      zadd[k].push(interval === 0 && offlineAfter === 0 ? defaultDeadline : at + this.thresholdMsOf(interval, offlineAfter), m);
      members[k].push(m);
      pos[k].push(i);
    }
    const p = this.pipelines();
    const reads: [number, number][] = [];
    for (let k = 0; k < n; k++) {
      if (!zadd[k]) continue;
      p.call(k, 'ZADD', zadd[k]);
      reads.push([k, p.call(k, 'SMISMEMBER', members[k])]);
    }
    const res = await p.exec();
    const back: IndexedDevice[] = [];
    for (const [k, h] of reads) {
      const flags = res[h] as number[];
      for (let j = 0; j < flags.length; j++) if (flags[j] === 1) back.push(index.device(slots[pos[k][j]]));
    }
    if (back.length) await this.markOnline(back, at);
  }

  /**
   * Devices seen again while not online: recorded at once, in the request (it is the rare path).
   * Each is claimed with SREM so concurrent heartbeats record one transition; on failure the
   * claim is given back so the next heartbeat retries.
   */
  private async markOnline(devices: IndexedDevice[], at: number): Promise<void> {
    const unique = [...new Map(devices.map((d) => [d.id, d])).values()];
    const p = this.pipelines();
    const handles = unique.map((d) => {
      const m = memberOf(d);
      const k = this.shardOfMember(m);
      return p.call(k, 'SREM', [this.shards[k].down, m]);
    });
    const res = await p.exec();
    const claimed = unique.filter((_, i) => res[handles[i]] === 1);
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
      const back = this.pipelines();
      this.byShard(claimed.map(memberOf)).forEach((ms, k) => ms.length && back.call(k, 'SADD', [this.shards[k].down, ...ms]));
      await back.exec().catch(() => undefined);
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
    const p = this.pipelines();
    this.byShard(members).forEach((ms, k) => ms.length && p.call(k, 'ZADD', [this.shards[k].deadlines, 'XX', ...ms.flatMap((m) => [at.getTime(), m])]));
    await p.exec();
  }

  // ---------------------------------------------------------------- sweep

  /** One sweep at `now`; concurrent calls in this process share the run in progress. */
  sweep(now = Date.now()): Promise<SweepResult> {
    this.sweeping ??= this.runSweep(now).finally(() => (this.sweeping = null));
    return this.sweeping;
  }

  /**
   * The latest deadline a sweep at `now` may take. While Redis was unreachable heartbeats were not
   * recorded (HTTP answered 503, a SIP keepalive 200), so a deadline that passed during an outage is
   * no silence the device chose: until a grace (liveness.bootGraceSeconds, else a full threshold)
   * after Redis is back, only deadlines that passed before the outage are taken — devices heard from
   * since have new ones; the silent ones go offline once the grace is over. Without this, every device
   * whose deadline fell in an outage longer than the threshold went offline at once when Redis came
   * back (as after a restart: wvp-GB28181-pro #814), with outages and console events for each school.
   */
  sweepCutoff(now: number): number {
    const o = this.queue.lastOutage();
    return o && now < o.to + this.bootGraceMs() ? Math.min(now, o.from) : now;
  }

  /** One full sweep without sharing a run in progress (tests use it to prove concurrent sweeps are harmless). */
  async runSweep(now: number): Promise<SweepResult> {
    const upTo = this.sweepCutoff(now);
    const result: SweepResult = { offline: 0, batches: 0, overdue: 0 };
    const lanes = Math.max(1, this.cfg.sweepParallelism);
    // Each round reads a share of the expired members from every shard (devices hash evenly over
    // them, so a mass outage fills every share); members a round did not take are read again by the next.
    const perShard = Math.max(1, Math.ceil((this.cfg.sweepBatchSize * lanes) / this.shards.length));
    for (;;) {
      const p = this.pipelines();
      const handles = this.shards.map((k, i) => p.call(i, 'ZRANGE', [k.deadlines, '-inf', String(upTo), 'BYSCORE', 'LIMIT', 0, perShard]));
      const read = await p.exec();
      const raw = handles.flatMap((h) => read[h] as string[]);
      if (raw.length === 0) break;
      // A mass outage is bound by Postgres writes on one connection; batches of disjoint schools
      // run side by side (they share no device, outage or flapping row, so they cannot deadlock
      // or wait on each other).
      const parts = lanes === 1 ? [raw] : this.splitBySchool(raw, lanes);
      const settled = await Promise.allSettled(parts.filter((p) => p.length).map((p) => this.sweepBatch(p, now, upTo)));
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
  private async sweepBatch(members: string[], now: number, upTo = now): Promise<number> {
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
        if (gone.length) {
          const p = this.pipelines();
          this.byShard(gone).forEach((ms, k) => ms.length && p.call(k, 'ZREM', [this.shards[k].deadlines, ...ms]));
          await p.exec();
        }
        const candidates = members.filter((mem) => locked.has(parseMember(mem).id));
        if (candidates.length === 0) return 0;
        // One claim per shard: the script touches that shard's two keys only (one slot).
        const claims = this.byShard(candidates).map((ms, k) =>
          ms.length ? (this.redis.eval(CLAIM_LUA, 2, this.shards[k].deadlines, this.shards[k].down, upTo, ...ms) as Promise<string[]>) : Promise.resolve([]),
        );
        const settled = await Promise.allSettled(claims);
        const out: string[] = [];
        for (const r of settled) if (r.status === 'fulfilled') out.push(...r.value);
        claimed = out.filter((_, i) => i % 2 === 0);
        for (const r of settled) if (r.status === 'rejected') throw r.reason;
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
        const p = this.pipelines();
        this.byShard(claimed).forEach((ms, k) => {
          if (!ms.length) return;
          p.call(k, 'ZADD', [this.shards[k].deadlines, 'NX', ...ms.flatMap((c) => [now, c])]);
          p.call(k, 'SREM', [this.shards[k].down, ...ms]);
        });
        await p.exec().catch(() => undefined);
      }
      throw e;
    }
  }

  // ---------------------------------------------------------------- reads from Redis

  /** Last heartbeat time derived from the deadline (null if none since boot / offline). */
  async lastSeen(devices: { id: string; kind: WatchedDeviceKind }[]): Promise<(Date | null)[]> {
    if (devices.length === 0) return [];
    const p = this.pipelines();
    const ms = devices.map(memberOf);
    const byShard = this.byShard(ms);
    const handles = byShard.map((list, k) => (list.length ? p.call(k, 'ZMSCORE', [this.shards[k].deadlines, ...list]) : -1));
    const res = await p.exec();
    const score = new Map<string, string | null>();
    byShard.forEach((list, k) => list.forEach((m, j) => score.set(m, (res[handles[k]] as (string | null)[])[j])));
    const scores = ms.map((m) => score.get(m) ?? null);
    return scores.map((s, i) => {
      if (s === null || Number(s) % 1 !== 0) return null;
      return new Date(Number(s) - this.thresholdMs(this.index.get(devices[i].id)));
    });
  }
}

/** The keys of `n` liveness shards (see DeviceHealthService). */
export function shardKeys(config: AppConfig, n = config.liveness.shards): Shard[] {
  return Array.from({ length: n }, (_, i) => ({
    deadlines: taggedKey(config, `liveness:${i}`, 'deadlines'),
    down: taggedKey(config, `liveness:${i}`, 'down'),
  }));
}

/**
 * Commands addressed to shards, sent as pipelines: one for all on a single Redis, one per shard on a
 * cluster. `call` returns a handle; `exec` sends every pipeline in the same tick (so commands keep
 * their order per connection with what the caller sent before) and returns results by handle,
 * throwing the first command error.
 */
class ShardPipelines {
  private readonly calls: [shard: number, command: string, args: (string | number)[]][] = [];
  /** `group(shard)`: the pipeline a shard's commands join (one for all on a single Redis; a cluster: the master serving its slot). */
  constructor(
    private readonly redis: RedisClient,
    private readonly group: (shard: number) => string | number,
  ) {}

  call(shard: number, command: string, args: (string | number)[]): number {
    this.calls.push([shard, command, args]);
    return this.calls.length - 1;
  }

  async exec(): Promise<unknown[]> {
    try {
      return await this.send(this.group);
    } catch (e) {
      // The slot map changed between grouping and sending (a resharding): ioredis refused the pipeline
      // before sending anything. Once more with one pipeline per shard (always within one slot).
      if (!/slots allocation group/.test((e as Error).message)) throw e;
      return this.send((shard) => `shard:${shard}`);
    }
  }

  private async send(group: (shard: number) => string | number): Promise<unknown[]> {
    const pipes = new Map<string | number, { p: ReturnType<RedisClient['pipeline']>; n: number }>();
    const at: [string | number, number][] = [];
    for (const [shard, command, args] of this.calls) {
      const key = group(shard);
      let e = pipes.get(key);
      if (!e) pipes.set(key, (e = { p: this.redis.pipeline(), n: 0 }));
      e.p.call(command, args);
      at.push([key, e.n++]);
    }
    const keys = [...pipes.keys()];
    const settled = await Promise.allSettled(keys.map((k) => execOrThrow(pipes.get(k)!.p)));
    const byKey = new Map<string | number, unknown[]>();
    for (let i = 0; i < keys.length; i++) {
      const r = settled[i];
      if (r.status === 'rejected') throw r.reason;
      byKey.set(keys[i], r.value);
    }
    return at.map(([k, i]) => byKey.get(k)![i]);
  }
}

/** Runs a pipeline and throws the first command error (ioredis reports them per command). */
async function execOrThrow(p: ReturnType<RedisClient['pipeline']>): Promise<unknown[]> {
  const res = (await p.exec()) ?? [];
  const out: unknown[] = new Array(res.length);
  for (let i = 0; i < res.length; i++) {
    if (res[i][0]) throw res[i][0];
    out[i] = res[i][1];
  }
  return out;
}
