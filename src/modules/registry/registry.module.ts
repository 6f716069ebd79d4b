import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { APP_CONFIG, AppConfig } from '../../config/config';
import { AuditService } from '../audit-log';
import { AlarmDevice } from './entities/alarm-device.entity';
import { Camera } from './entities/camera.entity';
import { District } from './entities/district.entity';
import { EducationGroup } from './entities/education-group.entity';
import { Guard } from './entities/guard.entity';
import { ProtectionPost } from './entities/protection-post.entity';
import { School } from './entities/school.entity';
import { Zone } from './entities/zone.entity';
import { IMPORT_KINDS, ImportKind } from './import/columns';
import { importController, UploadInterceptor } from './import/import.controller';
import { ImportService } from './import/import.service';
import { ResourceService } from './resource';
import { resourceController, serviceToken } from './resource.controller';
import { DeviceStatusService } from './device-status.service';
import { GbProvisioningService } from './gb-provisioning.service';
import { GuardVerificationController } from './guards.controller';
import { ProtectionPostsService } from './protection-posts.service';
import { RegistryService } from './registry.service';
import { RESOURCES } from './resources';

const resourceProviders = RESOURCES.map((def) => ({
  provide: serviceToken(def),
  inject: [DataSource, AuditService, APP_CONFIG],
  useFactory: (db: DataSource, audit: AuditService, config: AppConfig) => new ResourceService(def as never, db, audit, config),
}));

/** Bulk import/export routes for the lists that have a file layout (schools, cameras, …). */
const importControllers = RESOURCES.filter((def) => def.path in IMPORT_KINDS).map((def) => importController(def, def.path as ImportKind));

@Module({
  imports: [TypeOrmModule.forFeature([District, Zone, EducationGroup, School, Camera, AlarmDevice, Guard, ProtectionPost])],
  controllers: [GuardVerificationController, ...RESOURCES.map(resourceController), ...importControllers],
  providers: [...resourceProviders, RegistryService, DeviceStatusService, ProtectionPostsService, GbProvisioningService, ImportService, UploadInterceptor],
  exports: [RegistryService, DeviceStatusService, ProtectionPostsService, GbProvisioningService, ...resourceProviders.map((p) => p.provide)],
})
export class RegistryModule {}
