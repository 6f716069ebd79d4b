/**
 * The server's console event catalogue, as the web app sees it: the ONE file in web/ that imports
 * server source. Types only (`export type`), so nothing of the server is bundled. When the
 * catalogue moves, change the path here and nowhere else.
 */
export type { ConsoleEvent, ConsoleEventMap, ConsoleEventType, IncidentCamera, IncidentSummary } from '../../../src/modules/console-events/console-events';
