import type { AppConfig } from '../../config/config';
import type { ConsoleEventsConfig } from '../console-events/console-events.config';

/** The `console` config section (rules in src/config/config.ts); the event log's keys are in ConsoleEventsConfig. */
export interface ConsoleConfig extends ConsoleEventsConfig {
  /** A console that missed more events than this gets a snapshot instead of a replay. */
  replayMaxEvents: number;
  replayPageSize: number;
  /** Rows read from console_events per delivery round. */
  deliveryBatchSize: number;
  /** Safety-net poll of console_events (NOTIFYs can be missed across a reconnect). */
  pollMs: number;
  snapshotMaxIncidents: number;
  /** Attach the socket.io Redis adapter (cross-node rooms, fetchSockets, the Redis emitter). */
  redisAdapter: boolean;
  /** Redis channel prefix of the adapter, under redis.keyPrefix. */
  adapterKey: string;
  /** How often a connected console's token is re-checked for revocation (logout, disabled user). */
  revocationCheckSeconds: number;
}

export const consoleConfig = (config: AppConfig): ConsoleConfig => config.console as ConsoleConfig;
