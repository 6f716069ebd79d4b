import { Global, Inject, Module, OnModuleInit } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '../../config/config';
import { JobName } from '../../infra/queue/queue.catalogue';
import { QueueService } from '../../infra/queue/queue.service';
import { ConsoleEventsService } from './console-events.service';

const PRUNE_SCHEDULER = 'console.prune';

/**
 * The append-only console event log, below its producers (alarms, device health, patrols) and
 * its reader (src/modules/console): it imports no other capability module. Events are appended
 * from any role (and pruned by whichever role runs the job workers); the feed and the gateway
 * (sockets) live in ConsoleModule, api role only.
 */
@Global()
@Module({ providers: [ConsoleEventsService], exports: [ConsoleEventsService] })
export class ConsoleEventsModule implements OnModuleInit {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(QueueService) private readonly queue: QueueService,
    private readonly events: ConsoleEventsService,
  ) {
    this.queue.handle(JobName.ConsolePrune, () => this.events.prune());
  }

  async onModuleInit(): Promise<void> {
    const every = this.config.console.pruneEveryMs;
    if (every > 0) await this.queue.upsertScheduler(PRUNE_SCHEDULER, JobName.ConsolePrune, { every }, {});
    else await this.queue.removeScheduler(JobName.ConsolePrune, PRUNE_SCHEDULER);
  }
}
