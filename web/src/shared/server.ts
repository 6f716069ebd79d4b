/**
 * The server's types the web app shares: the console event catalogue and the error-code
 * catalogue. The ONE file in web/ that imports server source (ESLint refuses any other); types
 * only (`export type`), so nothing of the server is bundled. When a catalogue moves, change its
 * path here and nowhere else.
 */
export type { ConsoleEvent, ConsoleEventMap, ConsoleEventType, IncidentCamera, IncidentSummary, PatrolFindingItem } from '../../../src/modules/console-events/console-events';
export type { ErrorCode } from '../../../src/infra/http/error-codes';
