/** The public surface of the alarms module: other modules and the app import only from here (checked by npm run lint). */
export { AlarmIntakeService, unplacedChannelKey, type UnplacedGbAlarmInput } from './alarm-intake.service';
export { INCIDENT_TYPE_LABEL, OPEN_STATUSES } from './alarms.constants';
export type { IncidentType, Priority } from './alarms.constants';
export { AlarmsModule } from './alarms.module';
export { CancelDto, NoteDto, OptionalNoteDto, ResolveDto } from './dto';
export { IncidentLifecycleService } from './incident-lifecycle.service';
export { IncidentNoticesService, type NoticeTimelineEntry } from './incident-notices.service';
export { IncidentQueriesService, type ForwardedIncident } from './incident-queries.service';
export type { IncidentView } from './incident-row';
export { IntakePressure } from './intake-pressure';
