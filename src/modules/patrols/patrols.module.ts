import { Inject, Logger, Module, OnModuleInit } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '../../config/config';
import { JobName } from '../../infra/queue/queue.catalogue';
import { QueueService } from '../../infra/queue/queue.service';
import { DeviceHealthModule } from '../device-health';
import { RegistryModule } from '../registry';
import { AuditsService } from './audits.service';
import { DayFactsService } from './day-facts.service';
import { FieldService } from './field.service';
import { FindingsService } from './findings.service';
import { FieldController, FindingsController, PatrolPlansController, PatrolRunsController, RoundsController } from './patrols.controller';
import { RoundsService } from './rounds.service';

const POST_CHECK_SCHEDULER = 'patrols.post-check';

/**
 * Patrols (issue 6): scheduled audits, findings and rectification tasks, protection-post and
 * guard-patrol check-ins, gate events, operator video rounds and coverage.
 */
@Module({
  imports: [RegistryModule, DeviceHealthModule],
  controllers: [PatrolPlansController, PatrolRunsController, FindingsController, FieldController, RoundsController],
  providers: [AuditsService, DayFactsService, FieldService, FindingsService, RoundsService],
  exports: [AuditsService, DayFactsService, FieldService, FindingsService],
})
export class PatrolsModule implements OnModuleInit {
  private readonly logger = new Logger('Patrols');

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(QueueService) private readonly queue: QueueService,
    private readonly audits: AuditsService,
    private readonly field: FieldService,
  ) {
    this.queue.handle(JobName.PatrolRun, async ({ planId }, { scheduledFor }) => {
      // The slot is the scheduled time the job carries, so a retry or a late worker lands in the same slot.
      const slot = scheduledFor ?? undefined;
      return this.audits
        .runPlan(planId, { slot, trigger: 'schedule' })
        .then((r) => (r ? { runId: r.run?.id, duplicate: r.duplicate } : { skipped: 'plan deleted' }));
    });
    this.queue.handle(JobName.PatrolPostCheck, () => this.field.checkPosts());
  }

  async onModuleInit(): Promise<void> {
    const every = this.config.patrols.postCheckEveryMs;
    if (every > 0) await this.queue.upsertScheduler(POST_CHECK_SCHEDULER, JobName.PatrolPostCheck, { every }, {});
    else await this.queue.removeScheduler(JobName.PatrolPostCheck, POST_CHECK_SCHEDULER);
    const reconcile = async () => {
      const r = await this.audits.reconcileSchedulers();
      if (r.removed) this.logger.log(`patrol plan schedulers: ${r.upserted} kept, ${r.removed} stale removed`);
    };
    this.queue.onReconcile('patrol plan schedulers', reconcile);
    await reconcile().catch((e: Error) => this.logger.warn(`patrol plan schedulers left to the next reconcile (Redis down?): ${e.message}`));
  }
}
