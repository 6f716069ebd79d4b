/** The public surface of the compliance module: other modules and the app import only from here (checked by npm run lint). */
export { ComplianceModule } from './compliance.module';
