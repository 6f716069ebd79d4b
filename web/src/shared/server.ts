/**
 * The server's types the web app shares: the console event catalogue, the error-code catalogue
 * and the incident view the socket's snapshot and actions answer with (REST answers come from the
 * OpenAPI document: api-schema.d.ts, named in api/responses.ts). The ONE file in web/ that imports server source (ESLint refuses any other); types
 * only (`export type`), so nothing of the server is bundled. When a catalogue moves, change its
 * path here and nowhere else.
 */
export type {
  ConsoleEvent,
  ConsoleEventMap,
  ConsoleEventType,
  DrillWindowItem,
  IncidentCamera,
  IncidentSummary,
} from '../../../src/modules/console-events/console-events.catalogue';
export type { ErrorCode } from '../../../src/infra/http/error-codes';
export type { IncidentView } from '../../../src/modules/alarms/incident-row';
export type { ChannelUse } from '../../../src/modules/notifications/channel-uses';
