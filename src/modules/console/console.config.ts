import type { AppConfig } from '../../config/config';

/** The `console` config section (rules in src/config/config.ts). */
export interface ConsoleConfig {
  /** A console away longer than this (its last event is older) gets a snapshot instead of a replay. */
  replayWindowSeconds: number;
  /** A console that missed more events than this gets a snapshot instead of a replay. */
  replayMaxEvents: number;
  replayPageSize: number;
  /** Rows read from console_events per delivery round. */
  deliveryBatchSize: number;
  /** Safety-net poll of console_events (NOTIFYs can be missed across a reconnect). */
  pollMs: number;
  snapshotMaxIncidents: number;
  pruneEveryMs: number;
  /** Attach the socket.io Redis adapter (cross-node rooms, fetchSockets, the Redis emitter). */
  redisAdapter: boolean;
  /** Redis channel prefix of the adapter, under redis.keyPrefix. */
  adapterKey: string;
  /** How often a connected console's token is re-checked for revocation (logout, disabled user). */
  revocationCheckSeconds: number;
}

export const consoleConfig = (config: AppConfig): ConsoleConfig => config.console as ConsoleConfig;
