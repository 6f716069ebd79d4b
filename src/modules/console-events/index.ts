/** The public surface of the console-events module: other modules and the app import only from here (checked by npm run lint). */
export { SCHOOL_ONLY_EVENTS } from './console-events.catalogue';
export type {
  ConsoleEventInput,
  ConsoleEventMap,
  ConsoleEventType,
  DrillWindowChange,
  DrillWindowItem,
  IncidentCamera,
  IncidentSummary,
  NotificationDeliveryItem,
  ReporterPosition,
} from './console-events.catalogue';
export { ConsoleEventsModule } from './console-events.module';
export { CONSOLE_EVENTS_CHANNEL, ConsoleEventsService } from './console-events.service';
