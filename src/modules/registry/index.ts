/** The public surface of the registry module: other modules and the app import only from here (checked by npm run lint). */
export { DeviceStatusService } from './device-status.service';
export type { DeviceIndexRow, DeviceStateRow, WatchedDeviceKind } from './device-status.service';
export { GbProvisioningService } from './gb-provisioning.service';
export { ProtectionPostsService } from './protection-posts.service';
export { AREA_KINDS, CODE_PATTERN, DEVICE_STATUSES, GB_ID_PATTERN } from './registry.constants';
export type { AreaKind, DeviceStatus, SchoolType, ZoneLevel } from './registry.constants';
export { RegistryModule } from './registry.module';
export { RegistryService, type AlarmDeviceSpot } from './registry.service';
export { newQrToken } from './resource';
