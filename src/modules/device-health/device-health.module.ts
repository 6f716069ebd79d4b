import { Inject, Logger, Module, OnApplicationBootstrap, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '../../config/config';
import { JobName } from '../../infra/queue/queue.catalogue';
import { QueueService } from '../../infra/queue/queue.service';
import { RegistryModule } from '../registry';
import { DeviceHealthController } from './device-health.controller';
import { DeviceHealthQueries } from './device-health.queries';
import { DeviceHealthService } from './device-health.service';
import { DeviceIntakeController } from './device-intake.controller';
import { DeviceTransitionsService } from './device-transitions.service';
import { MaintenanceWindowsService } from './maintenance-windows.service';
import { OnlineTimeService } from './online-time.service';

const SWEEP_SCHEDULER = 'device-health.sweep';

/**
 * Device liveness (issue 3). Every role keeps the in-memory index (api: resolve heartbeats;
 * worker: per-device thresholds); the sweeping role also seeds deadlines at boot.
 */
@Module({
  imports: [RegistryModule],
  controllers: [DeviceIntakeController, DeviceHealthController],
  providers: [DeviceHealthService, DeviceTransitionsService, DeviceHealthQueries, OnlineTimeService, MaintenanceWindowsService],
  exports: [DeviceHealthService, DeviceHealthQueries, OnlineTimeService, MaintenanceWindowsService],
})
export class DeviceHealthModule implements OnModuleInit, OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('DeviceHealth');
  private timer?: NodeJS.Timeout;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(QueueService) private readonly queue: QueueService,
    private readonly health: DeviceHealthService,
  ) {
    this.queue.handle(JobName.LivenessSweep, () => this.health.sweep());
  }

  private get sweeps(): boolean {
    return this.config.role !== 'api';
  }

  async onModuleInit(): Promise<void> {
    const every = this.health.cfg.sweepEveryMs;
    if (every > 0) await this.queue.upsertScheduler(SWEEP_SCHEDULER, JobName.LivenessSweep, { every }, {});
    else await this.queue.removeScheduler(JobName.LivenessSweep, SWEEP_SCHEDULER);
  }

  async onApplicationBootstrap(): Promise<void> {
    // Redis came back (possibly empty: the deadlines are gone): every device without a deadline
    // gets one a full threshold from now, so a device silent since then still goes offline, and
    // one heard from since keeps its own (NX). A Redis that kept its data is left as it was.
    // Redis down at boot: the index is loaded without deadlines and they are seeded when Redis answers.
    let seeded = false;
    this.queue.onReconcile('liveness deadlines', async ({ reconnect }) => {
      if (!this.sweeps || (seeded && !reconnect)) return;
      await (seeded ? this.health.loadIndex({ full: true, seedAt: Date.now() }) : this.health.seedAtBoot());
      seeded = true;
    });
    const started = Date.now();
    if (this.sweeps) {
      await this.health.seedAtBoot(started).then(
        () => (seeded = true),
        async (e: Error) => {
          this.logger.warn(`liveness deadlines not seeded at boot (${e.message}); they will be when Redis answers`);
          await this.health.loadIndex({ full: true });
        },
      );
    } else await this.health.loadIndex({ full: true });
    this.logger.log(`liveness index: ${this.health.index.size} devices in ${Date.now() - started} ms`);
    // New and edited devices reach the index (and, for the sweeping role, get a deadline) within a period.
    this.timer = setInterval(() => {
      this.health.periodicRefresh(this.sweeps).catch((e) => this.logger.warn(`liveness index refresh failed: ${(e as Error).message}`));
    }, this.health.cfg.indexRefreshSeconds * 1000);
    this.timer.unref();
  }

  onApplicationShutdown(): void {
    if (this.timer) clearInterval(this.timer);
  }
}
