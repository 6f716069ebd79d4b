import { Module } from '@nestjs/common';
import { RegistryModule } from '../registry';
import { AlarmsOutboxService } from './alarms-outbox.service';
import { AlarmsController } from './alarms.controller';
import { AlarmsJobs } from './alarms.jobs';
import { AlarmIntakeService } from './alarm-intake.service';
import { ButtonTestsController } from './button-tests.controller';
import { ButtonTestsService } from './button-tests.service';
import { DrillWindowsService } from './drill-windows.service';
import { HandoversController } from './handovers.controller';
import { HandoversService } from './handovers.service';
import { IncidentLifecycleService } from './incident-lifecycle.service';
import { IncidentNoticesService } from './incident-notices.service';
import { IncidentQueriesService } from './incident-queries.service';
import { IntakePressure } from './intake-pressure';
import { PressFoldingService } from './press-folding.service';

/**
 * One-click alarms end to end: intake (devices, staff, operators), the incident lifecycle,
 * escalation timers, the police relay and drills/statistics. The controller is mounted in
 * every role (the worker has no HTTP server, so it is inert there); the job handlers and the
 * outbox relay run where BullMQ workers run (worker, all).
 */
@Module({
  imports: [RegistryModule],
  controllers: [AlarmsController, ButtonTestsController, HandoversController],
  providers: [
    AlarmIntakeService,
    IncidentLifecycleService,
    IncidentQueriesService,
    DrillWindowsService,
    AlarmsOutboxService,
    AlarmsJobs,
    IncidentNoticesService,
    PressFoldingService,
    ButtonTestsService,
    HandoversService,
    IntakePressure,
  ],
  exports: [AlarmIntakeService, IncidentLifecycleService, IncidentQueriesService, IncidentNoticesService, IntakePressure],
})
export class AlarmsModule {}
