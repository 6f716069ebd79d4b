import { Inject, Module, OnModuleInit } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '../../config/config';
import { JobName } from '../../infra/queue/queue.catalogue';
import { QueueService } from '../../infra/queue/queue.service';
import { AlarmsModule } from '../alarms';
import { AuthModule, UsersService } from '../auth';
import { ChannelsService } from './channels.service';
import { DeliveriesService } from './deliveries.service';
import { DutyController, IncidentNotificationsController, NotificationsController } from './notifications.controller';
import { notifyJobIds } from './notifications.constants';
import { PolicyService } from './policy.service';
import { RosterService } from './roster.service';
import { TargetResolver } from './target-address';

/**
 * Escalation that reaches a person: the duty roster (值班表), the escalation policy, outbound
 * channels (WeCom, DingTalk, Feishu, an SMS/voice gateway) and tracked delivery. It sits above
 * alarms and reacts to escalations through the job the alarms escalate handler writes to its
 * outbox (JobName.NotifyEscalation); alarms never imports it. It hears of changed users the same way round (auth's
 * UsersService.onChanged): a person on the roster disabled, demoted or renamed is a roster change for the consoles.
 */
@Module({
  imports: [AlarmsModule, AuthModule],
  controllers: [DutyController, NotificationsController, IncidentNotificationsController],
  providers: [RosterService, ChannelsService, PolicyService, DeliveriesService, TargetResolver],
  exports: [RosterService, ChannelsService, PolicyService, DeliveriesService],
})
export class NotificationsModule implements OnModuleInit {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly queue: QueueService,
    private readonly deliveries: DeliveriesService,
    roster: RosterService,
    users: UsersService,
  ) {
    users.onChanged((m, change) => roster.personChanged(m, change));
    queue.handle(JobName.NotifyEscalation, (p) => deliveries.escalation(p.incidentId, p.level));
    queue.handle(JobName.NotifyDeliver, (p, meta) => deliveries.deliver(p.deliveryId, meta.attempt));
    queue.handle(JobName.NotifyReconcile, () => deliveries.reconcile());
    queue.handle(JobName.RosterGapCheck, () => roster.checkGaps());
  }

  async onModuleInit(): Promise<void> {
    if (this.config.role === 'api') return;
    // Redis unreachable: messages are sent from Postgres here; back: what is still open is queued at once, not after redispatchAfterMs.
    this.queue.duringOutage('notification deliveries', () => this.deliveries.runDueHere());
    this.queue.onReconcile('notification deliveries', ({ reconnect }) => (reconnect ? this.deliveries.reconcile(0) : Promise.resolve(0)));
    const n = this.config.notifications;
    if (n.reconcileEveryMs > 0) await this.queue.upsertScheduler(notifyJobIds.reconcile, JobName.NotifyReconcile, { every: n.reconcileEveryMs }, {});
    else await this.queue.removeScheduler(JobName.NotifyReconcile, notifyJobIds.reconcile);
    if (n.rosterCheckEveryMs > 0) await this.queue.upsertScheduler(notifyJobIds.rosterCheck, JobName.RosterGapCheck, { every: n.rosterCheckEveryMs }, {});
    else await this.queue.removeScheduler(JobName.RosterGapCheck, notifyJobIds.rosterCheck);
  }
}
