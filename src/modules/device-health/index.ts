/** The public surface of the device-health module: other modules and the app import only from here (checked by npm run lint). */
export { DeviceHealthModule } from './device-health.module';
export { DeviceHealthQueries } from './device-health.queries';
export { DeviceHealthService } from './device-health.service';
export { MaintenanceWindowsService } from './maintenance-windows.service';
export type { MaintenanceWindowView } from './maintenance-windows.service';
export { OnlineTimeService } from './online-time.service';
export type { SchoolOnlineTime } from './online-time.service';
