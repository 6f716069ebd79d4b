import { isIP } from 'node:net';
import {
  AppConfig,
  DRILL_RELAY_MODES,
  GB_CASCADE_SOURCES,
  GB_CASCADE_STATUS_NOTIFY,
  GB_CASCADE_TRANSPORTS,
  DUTY_ROLES,
  ENVS,
  GB_ALARM_PRIORITIES,
  INCIDENT_TYPES,
  LOG_LEVELS,
  MAX_ESCALATION_LEVELS,
  PRIORITIES,
  ROLES,
  STAFFING_RULES,
} from './sections';

/**
 * The validation rules of every config key. SCHEMA is keyed by the leaf paths of AppConfig, so
 * the compiler refuses a rule for a key that does not exist and a key without a rule
 * (test/unit/config.spec.ts checks config/default.json against it the same way at run time).
 */

/** One entry of http.trustProxy's list: an Express name, an IP address or a subnet (what proxy-addr compiles without throwing). */
function isProxyAddress(entry: string): boolean {
  const [addr, bits, more] = entry.trim().split('/');
  if (more !== undefined) return false;
  if (bits === undefined && ['loopback', 'linklocal', 'uniquelocal'].includes(addr)) return true;
  const family = isIP(addr);
  return family !== 0 && (bits === undefined || (/^\d{1,3}$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128)));
}

/** One entry of video.snapshotUriAllowHosts: a host name, an IP address, or a subnet (address/bits). */
function isSnapshotHost(entry: string): boolean {
  const [addr, bits, more] = entry.trim().split('/');
  if (more !== undefined || !addr) return false;
  const family = isIP(addr);
  if (bits !== undefined) return family !== 0 && /^\d{1,3}$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128);
  return family !== 0 || /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/.test(addr);
}

/** One entry of video.onvifAllowedNetworks: an IP address or a subnet (address/bits). */
function isNetwork(entry: string): boolean {
  const [addr, bits, more] = entry.trim().split('/');
  const family = isIP(addr ?? '');
  if (more !== undefined || family === 0) return false;
  return bits === undefined || (/^\d{1,3}$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128));
}

/**
 * gb28181.cascade.superiors: a list of superior platforms; a problem names the entry and its field
 * (`[0].host: must not be empty`), so a bad entry stops boot saying which.
 */
function superiorsRule(v: unknown): string | null {
  if (!Array.isArray(v)) return `must be a list of superior platforms (got ${JSON.stringify(v)})`;
  const problems: string[] = [];
  const ids = new Set<string>();
  v.forEach((s: unknown, i) => {
    if (typeof s !== 'object' || s === null || Array.isArray(s)) return problems.push(`[${i}]: must be an object`);
    const e = s as Record<string, unknown>;
    const known = ['id', 'domain', 'host', 'port', 'transport', 'password', 'localId'];
    for (const k of Object.keys(e)) if (!known.includes(k)) problems.push(`[${i}].${k}: is not a known key (${known.join(', ')})`);
    const check = (k: string, r: Rule) => {
      const p = e[k] === undefined ? 'is missing' : r(e[k]);
      if (p) problems.push(`[${i}].${k}: ${p}`);
    };
    check('id', rules.str({ pattern: /^\d{20}$/, hint: 'must be a 20-digit GB/T 28181 id' }));
    check('domain', rules.str({ pattern: /^[A-Za-z0-9.-]{0,64}$/, hint: "must be '' or a SIP domain (digits, letters, dots)" }));
    check('host', rules.str({ nonEmpty: true, pattern: /^[A-Za-z0-9.:-]+$/, hint: 'must be an IP address or host name' }));
    check('port', rules.int(1, 65535));
    check('transport', rules.oneOf(GB_CASCADE_TRANSPORTS));
    check('password', rules.str({ nonEmpty: true }));
    check('localId', rules.str({ pattern: /^(\d{20})?$/, hint: "must be '' or a 20-digit GB/T 28181 id" }));
    if (typeof e.id === 'string') {
      if (ids.has(e.id)) problems.push(`[${i}].id: ${e.id} is listed twice`);
      ids.add(e.id);
    }
  });
  return problems.length ? problems.join('; ') : null;
}

/** A rule for one key; returns a problem description or null. */
export type Rule = (value: unknown) => string | null;

export const rules = {
  int:
    (min: number, max = Number.MAX_SAFE_INTEGER): Rule =>
    (v) =>
      typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max ? null : `must be an integer between ${min} and ${max} (got ${JSON.stringify(v)})`,
  num:
    (min: number, max: number): Rule =>
    (v) =>
      typeof v === 'number' && Number.isFinite(v) && v >= min && v <= max ? null : `must be a number between ${min} and ${max} (got ${JSON.stringify(v)})`,
  bool: (): Rule => (v) => (typeof v === 'boolean' ? null : `must be true or false (got ${JSON.stringify(v)})`),
  str:
    (opts: { nonEmpty?: boolean; pattern?: RegExp; hint?: string } = {}): Rule =>
    (v) => {
      if (typeof v !== 'string') return `must be a string (got ${JSON.stringify(v)})`;
      if (opts.nonEmpty && v.trim() === '') return 'must not be empty';
      if (opts.pattern && !opts.pattern.test(v)) return `${opts.hint ?? `must match ${opts.pattern}`} (got ${JSON.stringify(v)})`;
      return null;
    },
  oneOf:
    (values: readonly string[]): Rule =>
    (v) =>
      typeof v === 'string' && values.includes(v) ? null : `must be one of ${values.join(', ')} (got ${JSON.stringify(v)})`,
  url:
    (protocols: string[]): Rule =>
    (v) => {
      if (typeof v !== 'string') return `must be a URL string (got ${JSON.stringify(v)})`;
      try {
        const u = new URL(v);
        return protocols.includes(u.protocol) ? null : `must use ${protocols.join(' or ')} (got ${u.protocol})`;
      } catch {
        return `must be a valid URL (got ${JSON.stringify(v)})`;
      }
    },
  /** A five- or six-field cron expression (validated loosely; the scheduler re-validates). */
  cron: (): Rule => (v) => (typeof v === 'string' && /^(\S+\s+){4,5}\S+$/.test(v.trim()) ? null : `must be a cron expression (got ${JSON.stringify(v)})`),
};

/**
 * 'a.b.c' for every leaf of T: arrays and primitives are leaves, objects (sections, and the
 * map-like ones keyed by a closed union such as Record<Priority, …>) are descended into.
 */
export type LeafPath<T> = {
  [K in keyof T & string]: T[K] extends readonly unknown[] ? K : T[K] extends object ? `${K}.${LeafPath<T[K]>}` : K;
}[keyof T & string];

/** One rule per leaf of AppConfig, no more, no less. */
export type ConfigSchema = { readonly [P in LeafPath<AppConfig>]: Rule };

/** The same rule for every key of a map-like section (`prefix.<key>` for each of `keys`). */
function perKey<P extends string, K extends string>(prefix: P, keys: readonly K[], rule: Rule): Record<`${P}.${K}`, Rule> {
  return Object.fromEntries(keys.map((k) => [`${prefix}.${k}`, rule])) as Record<`${P}.${K}`, Rule>;
}

/** One validation pass covers every key and reports all problems at once. */
export const SCHEMA: ConfigSchema = {
  role: rules.oneOf(ROLES),
  env: rules.oneOf(ENVS),
  'http.port': rules.int(0, 65535),
  'http.host': rules.str({ nonEmpty: true }),
  'http.bodyLimitKb': rules.int(1, 1024 * 1024),
  'http.trustProxy': (v) =>
    typeof v === 'boolean' ||
    (typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= 10) ||
    (typeof v === 'string' && (/^\s*([1-9]|10)\s*$/.test(v) || v.split(',').every(isProxyAddress)))
      ? null
      : `must be false, true, a hop count 1–10, or proxy addresses/subnets such as 'loopback, 10.0.0.0/8' (got ${JSON.stringify(v)})`,
  'http.jsonMaxDepth': rules.int(4, 1000),
  'http.jsonMaxKeys': rules.int(100, 10_000_000),
  'http.jsonMaxObjectKeys': rules.int(10, 100_000),
  'database.url': rules.url(['postgres:', 'postgresql:']),
  'database.poolSize': rules.int(1, 500),
  'database.jobsPoolSize': rules.int(1, 500),
  'database.embeddedFallback': rules.bool(),
  'database.embeddedDataDir': rules.str({ nonEmpty: true }),
  'database.embeddedPort': rules.int(1, 65535),
  'database.connectTimeoutMs': rules.int(100, 60000),
  'database.poolWaitMs': rules.int(100, 600000),
  'database.jobsPoolWaitMs': rules.int(100, 600000),
  'database.queryTimeoutMs': rules.int(500, 600000),
  'database.jobsQueryTimeoutMs': rules.int(500, 3_600_000),
  'database.migrateConnectWaitMs': rules.int(0, 600_000),
  'redis.mode': rules.oneOf(['single', 'cluster']),
  'redis.clusterNodes': (v) => {
    if (!Array.isArray(v)) return `must be a list of redis:// URLs (got ${JSON.stringify(v)})`;
    const problems = v.map((u, i) => {
      const p = rules.url(['redis:', 'rediss:'])(u);
      if (p) return `[${i}]: ${p}`;
      const db = new URL(u as string).pathname.replace(/^\//, '');
      return db === '' || db === '0' ? null : `[${i}]: a cluster has database 0 only (got /${db})`;
    });
    return problems.filter(Boolean).join('; ') || null;
  },
  'redis.url': rules.url(['redis:', 'rediss:']),
  'redis.keyPrefix': rules.str({ nonEmpty: true, pattern: /^[A-Za-z0-9_.:-]+$/, hint: 'letters, digits and _.:- only' }),
  'redis.commandTimeoutMs': rules.int(50, 60000),
  'redis.queueCommandTimeoutMs': rules.int(50, 600000),
  'redis.connectTimeoutMs': rules.int(100, 60000),
  'redis.bootTimeoutMs': rules.int(100, 600_000),
  'retention.purgeCron': rules.cron(),
  'retention.auditLogDays': rules.int(184, 36500),
  'retention.deviceTransitionsDays': rules.int(30, 36500),
  'retention.incidentsDays': rules.int(365, 36500),
  'retention.patrolResultsDays': rules.int(365, 36500),
  'retention.alarmOutboxDays': rules.int(1, 36500),
  'retention.partitionMonthsAhead': rules.int(1, 24),
  'retention.ddlLockTimeoutMs': rules.int(10, 60_000),
  'retention.batchSize': rules.int(100, 100_000),
  'retention.cascadeBatchSize': rules.int(1, 100_000),
  'retention.batchPauseMs': rules.int(0, 60_000),
  'retention.maxBatchesPerRun': rules.int(1, 1_000_000),
  'queue.concurrency': rules.int(1, 1000),
  'queue.alarmsConcurrency': rules.int(1, 1000),
  'queue.notificationsConcurrency': rules.int(1, 1000),
  'queue.batchMax': rules.int(1, 10000),
  'queue.batchConcurrency': rules.int(1, 100),
  'queue.videoConcurrency': rules.int(0, 1000),
  'queue.noConnectionRetryMs': rules.int(100, 600000),
  'queue.outage.afterMs': rules.int(0, 600000),
  'queue.outage.pollMs': rules.int(50, 60000),
  'queue.outage.leaseMs': rules.int(1000, 3_600_000),
  'queue.outage.batchSize': rules.int(1, 10000),
  'queue.workerStallMs': rules.int(0, 3_600_000), // 0 = no watchdog
  'queue.lockDurationMs': rules.int(1000, 3_600_000),
  'queue.stalledIntervalMs': rules.int(1000, 3_600_000),
  'queue.schedulerReconcileMs': rules.int(1000, 3_600_000),
  'log.level': rules.oneOf(LOG_LEVELS),
  'log.repeatSummaryMs': rules.int(1000, 3_600_000),
  'auth.jwtSecret': rules.str(),
  'auth.secretsFile': rules.str({ nonEmpty: true }),
  'auth.accessTtlSeconds': rules.int(30, 86400),
  'auth.refreshTtlSeconds': rules.int(300, 90 * 86400),
  'auth.refreshReuseGraceSeconds': rules.int(0, 300),
  'auth.loginMaxAttemptsPerAccount': rules.int(1, 1000),
  'auth.loginMaxAttemptsPerAddress': rules.int(1, 100000),
  'auth.loginWindowSeconds': rules.int(1, 86400),
  'auth.loginMaxAttemptsPerAccountGlobal': rules.int(1, 100000),
  'auth.revocationSyncMs': rules.int(100, 60000),
  'auth.bootstrapAdminUsername': rules.str(),
  'auth.bootstrapAdminPassword': rules.str(),
  'auth.minPasswordLength': rules.int(6, 128),
  'auth.deviceCredentialCacheSeconds': rules.int(0, 3600),
  'auth.deviceCredentialNegativeCacheMax': rules.int(0, 1_000_000),
  'auth.pruneRefreshTokensCron': rules.cron(),
  'registry.defaultPageSize': rules.int(1, 10000),
  'registry.maxPageSize': rules.int(1, 10000),
  'import.maxFileBytes': rules.int(1024, 1024 * 1024 * 1024),
  'import.maxRows': rules.int(1, 10_000_000),
  'import.maxColumns': rules.int(8, 16384),
  'import.maxUnzippedBytes': rules.int(1024 * 1024, 4 * 1024 * 1024 * 1024),
  'import.maxCellChars': rules.int(100, 1_000_000),
  'import.maxTotalChars': rules.int(10_000, 1_000_000_000),
  'import.maxConcurrent': rules.int(1, 64),
  'import.maxConcurrentPerUser': rules.int(1, 64),
  'import.charsetMinScore': rules.num(0.5, 1),
  'import.parseWorkers': rules.int(1, 64),
  'import.parseQueue': rules.int(0, 1000),
  'import.parseTimeoutMs': rules.int(1000, 600_000),
  'import.parseMemoryMb': rules.int(32, 8192),
  'import.previewRows': rules.int(0, 100),
  'heavyReads.maxConcurrent': rules.int(1, 64),
  'heavyReads.maxQueued': rules.int(0, 1000),
  'heavyReads.maxWaitMs': rules.int(100, 600_000),
  'heavyReads.userPerMinute': rules.int(1, 100_000),
  'heavyReads.userBurst': rules.int(1, 10_000),
  'demo.seedOnStart': rules.bool(),
  'demo.userPassword': rules.str(),
  'demo.simulateHeartbeats': rules.bool(),
  'demo.simulateOffline': rules.num(0, 1),
  'demo.simulateFlap': rules.num(0, 1),
  // Device liveness (GB/T 28181-2016 §9.6.1: keepalive 60 s, offline after 3 missed; GB/T 29315: faults repaired within 24 h).
  'liveness.intervalSeconds': rules.int(1, 86400),
  'liveness.missedBeforeOffline': rules.int(1, 100),
  'liveness.sweepEveryMs': rules.int(0, 3_600_000), // 0 = no scheduled sweep (tests drive it)
  'liveness.sweepBatchSize': rules.int(1, 100_000),
  'liveness.sweepParallelism': rules.int(1, 8),
  'liveness.shards': rules.int(1, 1024),
  'liveness.bootGraceSeconds': rules.int(0, 7 * 86400), // 0 = intervalSeconds × missedBeforeOffline
  'liveness.flapCount': rules.int(1, 1000),
  'liveness.flapWindowMinutes': rules.int(1, 1440),
  'liveness.faultOverdueHours': rules.int(1, 24 * 365),
  'liveness.maxBatchSize': rules.int(1, 100_000),
  'liveness.maintenanceMaxHours': rules.int(1, 720),
  'liveness.maintenanceMaxLeadDays': rules.int(0, 365),
  'liveness.maintenanceMaxStartPastMinutes': rules.int(0, 1440),
  'liveness.maintenanceMinGapMinutes': rules.int(1, 1440),
  'liveness.indexRefreshSeconds': rules.int(1, 86400),
  // alarms (src/modules/alarms): escalation delays per priority, police relay, outbox relay
  ...perKey('alarms.escalationSeconds', PRIORITIES, (v) =>
    Array.isArray(v) &&
    v.length <= MAX_ESCALATION_LEVELS &&
    v.every((x, i) => typeof x === 'number' && x > 0 && x <= 86400 && (i === 0 || x > (v[i - 1] as number)))
      ? null
      : `must be a list of increasing delays in seconds, one per escalation level, at most ${MAX_ESCALATION_LEVELS} (got ${JSON.stringify(v)})`,
  ),
  ...perKey('alarms.priorityByType', INCIDENT_TYPES, rules.oneOf(PRIORITIES)),
  'alarms.devicePressPriority': rules.oneOf(PRIORITIES),
  'alarms.relayPriorities': (v) =>
    Array.isArray(v) && v.every((x) => rules.oneOf(PRIORITIES)(x) === null) ? null : `must be a list of P1..P4 (got ${JSON.stringify(v)})`,
  'alarms.policeRelay.url': (v) => (v === '' ? null : rules.url(['http:', 'https:'])(v)),
  'alarms.policeRelay.hmacSecret': rules.str(),
  'alarms.policeRelay.timeoutMs': rules.int(100, 120000),
  'alarms.policeRelay.attempts': rules.int(1, 1000),
  'alarms.policeRelay.backoffMs': rules.int(10, 3600000),
  'alarms.policeRelay.lateAfterSeconds': rules.num(0.1, 86400),
  'alarms.outbox.pollMs': rules.int(50, 600000),
  'alarms.outbox.redispatchAfterMs': rules.int(100, 86400000),
  'alarms.outbox.batchSize': rules.int(1, 10000),
  'alarms.groupCommit.windowMs': rules.int(0, 50),
  'alarms.groupCommit.maxBatch': rules.int(1, 1000),
  'alarms.groupCommit.maxConcurrent': rules.int(1, 100),
  'alarms.groupCommit.statementMaxEvents': rules.int(1, 16),
  'alarms.deviceBodyMaxKb': rules.int(2, 2048),
  'alarms.deviceBodyTimeoutMs': rules.int(100, 120000), // below the server's request timeout (300 s)
  'alarms.deviceEventRepeatWindowSeconds': rules.int(1, 86400),
  'alarms.deviceRetryWindowSeconds': rules.int(1, 86400),
  'alarms.pressesPerSecond': rules.num(0.1, 10000),
  'alarms.pressBurst': rules.int(1, 100000),
  'alarms.userNotesPerSecond': rules.num(0.01, 1000),
  'alarms.userNotesBurst': rules.int(1, 10000),
  'alarms.userRaisesPerMinute': rules.num(0.1, 100000),
  'alarms.userRaiseBurst': rules.int(1, 100000),
  'alarms.staffFoldSeconds': rules.int(0, 86400),
  'alarms.foldAnnounceFirst': rules.int(1, 1000),
  'alarms.foldAnnounceEvery': rules.int(1, 100000),
  'alarms.foldQuietMs': rules.int(100, 600000),
  'alarms.exportMaxRows': rules.int(1, 1000000),
  'alarms.handoverDefaultShiftHours': rules.int(1, 72),
  'alarms.drills.maxWindowMinutes': rules.int(1, 24 * 60),
  'alarms.drills.silencePeriodHours': rules.int(1, 24 * 31),
  'alarms.drills.maxStartPastMinutes': rules.int(0, 60),
  'alarms.drills.maxLeadDays': rules.int(1, 366),
  'alarms.drills.relay': rules.oneOf(DRILL_RELAY_MODES),
  'alarms.drills.relayLabel': rules.str({ nonEmpty: true }),
  'alarms.buttonTests.testModeMinutes': rules.int(1, 60),
  'alarms.buttonTests.testModeMaxMinutes': rules.int(1, 60),
  'alarms.buttonTests.maxTestModesPerDay': rules.int(1, 100),
  'alarms.buttonTests.testModeRefreshMs': rules.int(100, 60000),
  'alarms.evidenceSnapshotSeconds': (v) =>
    Array.isArray(v) && v.length <= 5 && v.every((x, i) => Number.isInteger(x) && x >= 0 && x <= 3600 && (i === 0 || x > (v[i - 1] as number)))
      ? null
      : `must be a list of at most 5 increasing whole seconds from 0 to 3600 (got ${JSON.stringify(v)})`,
  'alarms.evidenceLateToleranceSeconds': rules.int(0, 3600),
  'alarms.evidenceMaxCameras': rules.int(1, 64),
  'alarms.yieldToIntakeAtPerSecond': rules.int(0, 1_000_000),
  'alarms.yieldToIntakeMaxSeconds': rules.int(0, 600),
  // patrols (src/modules/patrols): audits, protection posts, video rounds, staffing rule (公治〔2015〕168号 / GB/T 29315-2022)
  'patrols.staffingRule': rules.oneOf(STAFFING_RULES),
  'patrols.onlineRateThreshold': rules.num(0, 1),
  'patrols.alarmTestOverdueDays': rules.int(1, 3650),
  'patrols.postGraceMinutes': rules.int(0, 240),
  'patrols.postEarlyMinutes': rules.int(0, 720),
  'patrols.postCheckEveryMs': rules.int(0, 3_600_000), // 0 = no scheduled post check (tests drive it)
  'patrols.guardPatrolDailyMinimum': rules.int(0, 1000),
  'patrols.gateOpenToleranceMinutes': rules.int(0, 1440),
  'patrols.taskDeadlineHours': rules.int(1, 24 * 365),
  'patrols.exportMaxRows': rules.int(1, 1000000),
  'patrols.roundDefaultSize': rules.int(1, 1000),
  'patrols.roundMaxSize': rules.int(1, 1000),
  'patrols.roundReservationMinutes': rules.int(1, 1440),
  'patrols.coveragePeriodDays': rules.int(1, 365),
  'patrols.minCronIntervalSeconds': rules.int(1, 86400),
  'patrols.manualSlotMaxAgeHours': rules.int(1, 24 * 366),
  'patrols.guardPatrolMinGapMinutes': rules.int(0, 720), // 0 = no spacing rule
  'patrols.checkinMinGapSeconds': rules.int(0, 3600), // 0 = no spacing rule
  'patrols.roundVerdictMinSeconds': rules.int(0, 600), // 0 = no spacing rule
  'patrols.postQrWindowMinutes': rules.int(1, 7 * 1440),
  'patrols.postQrGraceWindows': rules.int(0, 30),
  'patrols.postQrSecret': rules.str(), // '' = derived from auth.jwtSecret
  // compliance (src/modules/compliance): daily snapshot of the four targets
  'compliance.snapshotCron': rules.cron(),
  'compliance.snapshotEnabled': rules.bool(),
  'compliance.networkedWithinDays': rules.int(1, 366),
  // GB/T 28181 SIP front end (src/modules/gb28181)
  'gb28181.enabled': rules.bool(),
  'gb28181.host': rules.str({ nonEmpty: true }),
  'gb28181.port': rules.int(0, 65535),
  'gb28181.advertisedHost': rules.str(),
  'gb28181.platformId': rules.str({ pattern: /^\d{20}$/, hint: 'must be a 20-digit GB/T 28181 id' }),
  'gb28181.defaultPassword': rules.str(),
  'gb28181.defaultPasswordMaxDevices': rules.int(0, 10_000_000), // 0 = the default password enrols no new device (A11)
  'gb28181.nonceTtlSeconds': rules.int(10, 86400),
  'gb28181.maxMessageBytes': rules.int(1024, 65535),
  'gb28181.maxTcpMessageBytes': rules.int(1024 * 1024, 64 * 1024 * 1024), // ≥ 1 MiB (issue 16 §3)
  'gb28181.rateLimitPerSecond': rules.int(0, 1_000_000),
  'gb28181.rateLimitBurst': rules.int(1, 1_000_000),
  'gb28181.deviceRateLimitPerSecond': rules.int(0, 1_000_000),
  'gb28181.deviceRateLimitBurst': rules.int(1, 1_000_000),
  'gb28181.deviceAlarmRateLimitPerSecond': rules.int(0, 1_000_000),
  'gb28181.deviceAlarmRateLimitBurst': rules.int(1, 1_000_000),
  'gb28181.udpReceiveBufferBytes': rules.int(65536, 256 * 1024 * 1024),
  'gb28181.tcpIdleSeconds': rules.int(10, 86400),
  'gb28181.maxTcpConnections': rules.int(1, 1_000_000),
  'gb28181.queryTimeoutMs': rules.int(100, 120000),
  'gb28181.catalogTimeoutMs': rules.int(100, 600000),
  'gb28181.catalogMaxAssembliesPerDevice': rules.int(1, 64),
  'gb28181.catalogMaxAssemblies': rules.int(1, 1_000_000),
  'gb28181.catalogSaveConcurrency': rules.int(1, 64),
  'gb28181.catalogRowsPerStatement': rules.int(1, 1000), // attack notes F10: ≤ 1000 channels per statement
  'gb28181.catalogSubscribeSeconds': rules.int(0, 86400),
  'gb28181.deviceStatusQuerySeconds': rules.int(0, 86400), // 0 = never
  'gb28181.deviceStatusQueryMaxChannels': rules.int(1, 10000),
  'gb28181.commandTimeoutMs': rules.int(100, 120000),
  'gb28181.recordInfoTimeoutMs': rules.int(100, 600000),
  'gb28181.recordInfoMaxItems': rules.int(1, 100000),
  'gb28181.recordInfoMaxRangeHours': rules.int(1, 24 * 366),
  'gb28181.basicParamOnRegister': rules.bool(),
  'gb28181.heartbeatMaxOfflineSeconds': rules.int(10, 7 * 86400),
  'gb28181.transactionTtlMs': rules.int(1000, 64000),
  'gb28181.alarmRepeatWindowMs': rules.int(1000, 600_000),
  'gb28181.alarmRepeatMaxKeys': rules.int(100, 10_000_000),
  'gb28181.maxExpiresSeconds': rules.int(60, 7 * 86400),
  'gb28181.housekeepingMs': rules.int(100, 600000),
  'gb28181.processes': rules.int(1, 64),
  'gb28181.registerMaxInFlight': rules.int(1, 1_000_000),
  'gb28181.registerRateLimitPerSecond': rules.int(0, 1_000_000), // 0 = none (attack pass 4 #1)
  'gb28181.registerRateLimitBurst': rules.int(1, 1_000_000),
  'gb28181.registerLookupConcurrency': rules.int(1, 1000), // keep it well below database.poolSize
  'gb28181.registerLookupQueue': rules.int(0, 1_000_000),
  'gb28181.unknownIdCacheSeconds': rules.int(0, 3600), // 0 = no negative cache
  'gb28181.unknownIdCacheMax': rules.int(0, 10_000_000),
  'gb28181.registerRetryAfterSeconds': rules.int(1, 3600),
  'gb28181.afterRegisterConcurrency': rules.int(1, 10_000),
  'gb28181.restartGraceSeconds': rules.int(0, 86400),
  ...perKey('gb28181.alarmPriorities', GB_ALARM_PRIORITIES, rules.oneOf(PRIORITIES)),
  // cascade to higher-level platforms (issue 16 §7)
  'gb28181.cascade.enabled': rules.bool(),
  'gb28181.cascade.localId': rules.str({ pattern: /^(\d{20})?$/, hint: "must be '' or a 20-digit GB/T 28181 id" }),
  'gb28181.cascade.civilCode': rules.str({ pattern: /^(\d{2}|\d{4}|\d{6}|\d{8})?$/, hint: "must be '' or a civil code of 2, 4, 6 or 8 digits" }),
  'gb28181.cascade.name': rules.str(),
  'gb28181.cascade.superiors': superiorsRule,
  'gb28181.cascade.registerExpiresSeconds': rules.int(60, 86400),
  'gb28181.cascade.keepaliveSeconds': rules.int(1, 3600),
  'gb28181.cascade.keepaliveMaxMissed': rules.int(1, 100),
  'gb28181.cascade.retryMinMs': rules.int(100, 3_600_000),
  'gb28181.cascade.retryMaxMs': rules.int(100, 3_600_000),
  'gb28181.cascade.requestTimeoutMs': rules.int(100, 120_000),
  'gb28181.cascade.catalogItemsPerMessage': rules.int(1, 200),
  'gb28181.cascade.catalogMinIntervalMs': rules.int(0, 3600000),
  'gb28181.cascade.charset': rules.oneOf(['GB18030', 'UTF-8']),
  'gb28181.cascade.forwardAlarms': rules.bool(),
  'gb28181.cascade.alarmSources': (v) =>
    Array.isArray(v) && v.every((x) => rules.oneOf(GB_CASCADE_SOURCES)(x) === null)
      ? null
      : `must be a list of ${GB_CASCADE_SOURCES.join(', ')} (got ${JSON.stringify(v)})`,
  'gb28181.cascade.alarmPollMs': rules.int(50, 600_000),
  'gb28181.cascade.alarmLookbackSeconds': rules.int(10, 7 * 86400),
  'gb28181.cascade.alarmMaxAttempts': rules.int(1, 1000),
  'gb28181.cascade.alarmBatchMax': rules.int(1, 100_000),
  'gb28181.cascade.statusNotify': rules.oneOf(GB_CASCADE_STATUS_NOTIFY),
  'gb28181.cascade.statusPollMs': rules.int(100, 600_000),
  'gb28181.cascade.statusMessagesPerSecond': rules.num(0.1, 1000),
  'gb28181.cascade.subscribeMinSeconds': rules.int(1, 86400),
  'gb28181.cascade.subscribeMaxSeconds': rules.int(1, 7 * 86400),
  'gb28181.cascade.controlPerSecond': rules.num(0.1, 1000),
  'gb28181.cascade.checkFromDomain': rules.bool(),
  // console (src/modules/console): replay window for reconnecting consoles, delivery, retention
  'console.replayWindowSeconds': rules.int(10, 7 * 86400), // away longer (or events pruned): a snapshot instead of a replay
  'console.replayMaxEvents': rules.int(1, 1_000_000), // more missed events than this: a snapshot
  'console.replayPageSize': rules.int(10, 10000),
  'console.deliveryBatchSize': rules.int(10, 100000),
  'console.pollMs': rules.int(50, 600000), // safety net for missed NOTIFYs
  'console.gapMaxWaitMs': rules.int(100, 600000),
  'console.lateMax': rules.int(100, 1_000_000),
  'console.throughMs': rules.int(50, 60000),
  'console.snapshotMaxIncidents': rules.int(1, 10000),
  'console.pruneEveryMs': rules.int(0, 86400000), // 0 = no scheduled pruning
  'console.redisAdapter': rules.bool(),
  'console.adapterKey': rules.str({ nonEmpty: true, pattern: /^[A-Za-z0-9_.:-]+$/, hint: 'letters, digits and _.:- only' }),
  'console.revocationCheckSeconds': rules.int(1, 3600),
  'console.actionsPerSecond': rules.num(0.1, 10000),
  'console.actionBurst': rules.int(1, 100000),
  'console.userActionsPerSecond': rules.num(0.1, 10000),
  'console.userActionBurst': rules.int(1, 100000),
  'console.maxSocketsPerToken': rules.int(1, 10000),
  'console.maxSocketsPerUser': rules.int(1, 10000),
  // notifications (src/modules/notifications): escalation messages, delivery retries, default policy, roster gaps
  'notifications.publicBaseUrl': (v) => rules.url(['http:', 'https:'])(v) ?? (String(v).endsWith('/') ? 'must not end with /' : null),
  'notifications.linkSecret': rules.str(),
  'notifications.linkTtlSeconds': rules.int(60, 7 * 86400),
  'notifications.timeoutMs': rules.int(100, 60000),
  'notifications.attempts': rules.int(1, 1000),
  'notifications.retryDelayMs': rules.int(10, 3_600_000),
  'notifications.redispatchAfterMs': rules.int(100, 86_400_000),
  'notifications.reconcileEveryMs': rules.int(0, 3_600_000),
  'notifications.defaultLevelRoles': (v) =>
    Array.isArray(v) && v.length > 0 && v.every((x) => rules.oneOf(DUTY_ROLES)(x) === null)
      ? null
      : `must be a non-empty list of ${DUTY_ROLES.join(', ')} (got ${JSON.stringify(v)})`,
  'notifications.rosterCheckEveryMs': rules.int(0, 86_400_000),
  'notifications.rosterLookaheadHours': rules.int(1, 24 * 31),
  'notifications.rosterMaxBackdateMinutes': rules.int(0, 24 * 60),
  'notifications.allowPrivateTargets': rules.bool(),
  // video (src/modules/video): media path, GB/T 28181 live play, snapshots, evidence (GB/T 29315: 30 days)
  'video.enabled': rules.bool(),
  'video.ffmpegPath': rules.str({ nonEmpty: true }),
  'video.rtpHost': rules.str({ nonEmpty: true }),
  'video.rtpAdvertisedHost': rules.str(),
  'video.rtpPortMin': rules.int(1024, 65535),
  'video.rtpPortMax': rules.int(1024, 65535),
  'video.ssrcCheck': rules.bool(),
  'video.jitterPackets': rules.int(1, 4096),
  'video.jitterDelayMs': rules.int(0, 2000),
  'video.gbTransport': rules.oneOf(['udp', 'tcp-passive', 'tcp-active']),
  'video.inviteTimeoutMs': rules.int(500, 64000),
  'video.firstMediaTimeoutMs': rules.int(500, 60000),
  'video.stallTimeoutMs': rules.int(1000, 120000),
  'video.lingerMs': rules.int(0, 600000),
  'video.maxStreams': rules.int(1, 10000),
  'video.maxViewersPerStream': rules.int(1, 10000),
  'video.maxTranscodes': rules.int(0, 1000),
  'video.transcodeBitrateKbps': rules.int(100, 50000),
  'video.restartBackoffMinMs': rules.int(10, 60000),
  'video.restartBackoffMaxMs': rules.int(10, 600000),
  'video.maxRestartsPerMinute': rules.int(0, 1000),
  'video.viewerMaxBufferBytes': rules.int(65536, 256 * 1024 * 1024),
  'video.gopCacheMaxBytes': rules.int(65536, 256 * 1024 * 1024),
  'video.remuxerMaxQueueBytes': rules.int(65536, 256 * 1024 * 1024),
  'video.rtspTransport': rules.oneOf(['tcp', 'udp']),
  'video.rtspTimeoutMs': rules.int(500, 120000),
  'video.tokenTtlSeconds': rules.int(5, 3600),
  'video.tokenSecret': rules.str(),
  'video.publicWsBase': (v) => (v === '' ? null : rules.url(['ws:', 'wss:'])(v)),
  'video.snapshotCacheMs': rules.int(0, 600000),
  'video.snapshotTimeoutMs': rules.int(500, 120000),
  'video.snapshotFailureMemoMs': rules.int(0, 600000),
  'video.snapshotUriTimeoutMs': rules.int(200, 120000),
  'video.snapshotUriMaxBytes': rules.int(65536, 52428800),
  'video.snapshotUriAllowHosts': (v) =>
    Array.isArray(v) && v.every((e) => typeof e === 'string' && isSnapshotHost(e))
      ? null
      : `must be a list of host names, IP addresses or subnets such as '10.20.0.0/16' (got ${JSON.stringify(v)})`,
  'video.snapshotUriFallback': rules.bool(),
  'video.snapshotUriAuthCameras': rules.int(0, 1_000_000),
  'video.playbackMaxSeconds': rules.int(10, 86400),
  'video.playbackMaxAgeDays': rules.int(1, 3650),
  'video.maxPlaybacks': rules.int(0, 1000),
  'video.maxPlaybacksPerUser': rules.int(1, 100),
  'video.maxPlaybacksPerCamera': rules.int(1, 16),
  'video.playbackOverrunSeconds': rules.int(1, 3600),
  'video.snapshotWarmEncoders': rules.int(0, 16),
  'video.onvifTimeoutMs': rules.int(200, 60000),
  'video.onvifProbeMaxMs': rules.int(1000, 300000),
  'video.onvifMaxAnswerBytes': rules.int(16384, 16777216),
  'video.onvifProbeConcurrency': rules.int(1, 32),
  'video.onvifAllowedNetworks': (v) =>
    Array.isArray(v) && v.every((e) => typeof e === 'string' && isNetwork(e))
      ? null
      : `must be a list of IP addresses or subnets such as '10.0.0.0/8', 'fd00::/8' (got ${JSON.stringify(v)})`,
  'video.credentialKey': rules.str({ pattern: /^$|^[\x21-\x7e]{32,256}$/, hint: "'' or 32–256 printable ASCII characters" }),
  'video.recorderTimeZone': (v) => {
    try {
      new Intl.DateTimeFormat('en', { timeZone: String(v) });
      return typeof v === 'string' && v ? null : 'an IANA time zone name';
    } catch {
      return 'an IANA time zone name (e.g. Asia/Shanghai)';
    }
  },
  'video.evidenceDir': rules.str({ nonEmpty: true }),
  'video.evidenceRetentionDays': rules.int(1, 3650),
  'video.evidencePurgeCron': rules.cron(),
  'video.photoMaxBytes': rules.int(10240, 52428800),
  'video.photoMaxPixels': rules.int(10000, 40000000),
  'video.photosPerIncident': rules.int(1, 50),
  'video.photosPerTask': rules.int(1, 200),
  // ops: the OpenAPI document and the metrics endpoint
  'ops.apiDocs': rules.bool(),
  'ops.shutdownDeadlineMs': rules.int(1000, 600000),
  'ops.stateEveryMs': rules.int(200, 60000),
  'ops.queueBehindSeconds': rules.int(1, 3600),
  'ops.readyCheckTimeoutMs': rules.int(100, 30000),
  'ops.queueBoard': rules.bool(),
  'ops.queueBoardTtlSeconds': rules.int(30, 3600),
  'ops.metricsToken': rules.str({ pattern: /^$|^[\x21-\x7e]{16,256}$/, hint: "'' or 16–256 printable ASCII characters" }),
};
