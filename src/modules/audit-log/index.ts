/** The public surface of the audit-log module: other modules and the app import only from here (checked by npm run lint). */
export { AuditLogModule } from './audit-log.module';
export { AuditService } from './audit.service';
export type { AuditRecord } from './audit.service';
export { ACTOR_NAMES, type ActorNames } from './actor-names';
