import type { AppConfig } from '../../config/config';

/**
 * The keys of the `console` config section the event log reads (retention; rules in
 * src/config/config.ts). The rest of the section belongs to src/modules/console.
 */
export interface ConsoleEventsConfig {
  /** Events older than this are pruned; a console away longer (its last event is older) gets a snapshot instead of a replay. */
  replayWindowSeconds: number;
  /** How often the prune job runs; 0 = no scheduled pruning. */
  pruneEveryMs: number;
}

export const consoleEventsConfig = (config: AppConfig): ConsoleEventsConfig => config.console as ConsoleEventsConfig;
