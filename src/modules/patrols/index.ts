/** The public surface of the patrols module: other modules and the app import only from here (checked by npm run lint). */
export { DayFactsService } from './day-facts.service';
export type { DayFact } from './day-facts.service';
export { FieldService, windowReason } from './field.service';
export type { CheckinForSnapshot } from './field.service';
export { PatrolsModule } from './patrols.module';
export { FindingsService } from './findings.service';
export type { TaskForPhotos } from './findings.service';
export { CLOSE_PHOTOS_MAX, RECTIFICATION_PHOTO_PURPOSE, TASK_CLOSE_ROLES } from './patrols.constants';
