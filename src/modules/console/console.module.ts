import { Global, Inject, Module, OnModuleInit } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '../../config/config';
import { JobName } from '../../infra/queue/queue.catalogue';
import { QueueService } from '../../infra/queue/queue.service';
import { AlarmsModule } from '../alarms/alarms.module';
import { DeviceHealthModule } from '../device-health/device-health.module';
import { ConsoleEventsService } from './console-events.service';
import { consoleConfig } from './console.config';
import { ConsoleFeed } from './console-feed.service';
import { ConsoleGateway } from './console.gateway';
import { ConsoleWebService } from './console-web';

const PRUNE_SCHEDULER = 'console.prune';

/**
 * Events are appended from any role (and pruned by whichever role runs the job workers); the
 * feed and the gateway (sockets) exist only in the api role.
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
    const every = consoleConfig(this.config).pruneEveryMs;
    if (every > 0) await this.queue.upsertScheduler(PRUNE_SCHEDULER, JobName.ConsolePrune, { every }, {});
    else await this.queue.removeScheduler(JobName.ConsolePrune, PRUNE_SCHEDULER);
  }
}

@Module({
  imports: [AlarmsModule, DeviceHealthModule],
  providers: [ConsoleFeed, ConsoleGateway, ConsoleWebService],
  exports: [ConsoleGateway, ConsoleFeed],
})
export class ConsoleModule {}
