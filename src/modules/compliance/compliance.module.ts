import { Inject, Module, OnModuleInit } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '../../config/config';
import { JobName } from '../../infra/queue/queue.catalogue';
import { QueueService } from '../../infra/queue/queue.service';
import { PatrolsModule } from '../patrols';
import { RegistryModule } from '../registry';
import { shanghaiDate, TZ } from '../school-day';
import { ComplianceController } from './compliance.controller';
import { ComplianceService } from './compliance.service';

const SNAPSHOT_SCHEDULER = 'compliance.snapshot';

/** The four targets per school per day: on demand, daily snapshots, district view, trend, exports (issue 6). */
@Module({
  imports: [RegistryModule, PatrolsModule],
  controllers: [ComplianceController],
  providers: [ComplianceService],
  exports: [ComplianceService],
})
export class ComplianceModule implements OnModuleInit {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(QueueService) private readonly queue: QueueService,
    private readonly compliance: ComplianceService,
  ) {
    // The day is the scheduled time's day, so a retry after midnight still snapshots the intended day.
    this.queue.handle(JobName.ComplianceSnapshot, ({ date }, { scheduledFor }) => this.compliance.snapshot(date ?? shanghaiDate(scheduledFor ?? new Date())));
  }

  async onModuleInit(): Promise<void> {
    const c = this.config.compliance;
    if (c.snapshotEnabled) await this.queue.upsertScheduler(SNAPSHOT_SCHEDULER, JobName.ComplianceSnapshot, { pattern: c.snapshotCron, tz: TZ }, {});
    else await this.queue.removeScheduler(JobName.ComplianceSnapshot, SNAPSHOT_SCHEDULER);
  }
}
