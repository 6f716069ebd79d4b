import { Inject, Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '../../config/config';
import { QueueService } from '../../infra/queue/queue.service';
import { IncidentQueriesService } from '../alarms';

/**
 * What the console's degraded-state banner shows (socket message `system_state`): sent on connect
 * and whenever it changes. `redis` 'down': queue, timers and police relay wait (alarms are still
 * taken and shown); `queueBehind`: alarm jobs overdue by more than ops.queueBehindSeconds;
 * `policeRelayFailing`: alarms the police endpoint has not taken after a failed attempt;
 * `database` 'down': this probe could not read Postgres (alarms cannot be taken).
 */
export interface SystemState {
  v: 1;
  redis: 'ok' | 'down';
  database: 'ok' | 'down';
  queueBehind: number;
  policeRelayFailing: number;
  at: string;
}

/** Probes every ops.stateEveryMs in the api process; listeners hear of changes only. */
@Injectable()
export class ConsoleStateService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('ConsoleState');
  private timer?: NodeJS.Timeout;
  private probing = false;
  private readonly listeners: ((s: SystemState) => void)[] = [];
  current: SystemState = { v: 1, redis: 'ok', database: 'ok', queueBehind: 0, policeRelayFailing: 0, at: new Date().toISOString() };

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly queue: QueueService,
    private readonly incidents: IncidentQueriesService,
  ) {}

  onChange(l: (s: SystemState) => void): void {
    this.listeners.push(l);
  }

  onApplicationBootstrap(): void {
    this.timer = setInterval(() => void this.probe(), this.config.ops.stateEveryMs);
    this.timer.unref();
  }

  onApplicationShutdown(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** One probe (at most one at a time); returns the state. */
  async probe(): Promise<SystemState> {
    if (this.probing) return this.current;
    this.probing = true;
    try {
      const redis = this.queue.redisReady ? 'ok' : 'down';
      let database: SystemState['database'] = 'ok';
      let health = { queueBehind: this.current.queueBehind, policeRelayFailing: this.current.policeRelayFailing };
      try {
        health = await this.incidents.deliveryHealth(this.config.ops.queueBehindSeconds);
      } catch {
        database = 'down';
      }
      const next: SystemState = { v: 1, redis, database, ...health, at: new Date().toISOString() };
      const changed = (['redis', 'database', 'queueBehind', 'policeRelayFailing'] as const).some((k) => next[k] !== this.current[k]);
      this.current = next;
      if (changed) {
        if (redis === 'down' || database === 'down' || health.queueBehind || health.policeRelayFailing)
          this.logger.warn(
            `degraded: redis ${redis}, database ${database}, queue behind ${health.queueBehind}, police relay failing ${health.policeRelayFailing}`,
          );
        for (const l of this.listeners) l(next);
      }
      return next;
    } finally {
      this.probing = false;
    }
  }
}
