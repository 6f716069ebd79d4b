import { DynamicModule, Module } from '@nestjs/common';
import type { AppConfig } from './config/config';
import { ConfigModule } from './config/config.module';
import { DatabaseModule } from './infra/database/database.module';
import { QueueModule } from './infra/queue/queue.module';
import { RetentionModule } from './infra/database/retention';
import { RedisModule } from './infra/redis/redis.module';
import { TabularModule } from './infra/tabular/tabular';
import { HeavyReadsModule } from './infra/http/heavy-reads';
import { AuditLogModule } from './modules/audit-log';
import { AuthModule } from './modules/auth';
import { ConsoleEventsModule } from './modules/console-events';
import { ConsoleModule } from './modules/console';
import { RegistryModule } from './modules/registry';
import { DeviceHealthModule } from './modules/device-health';
import { AlarmsModule } from './modules/alarms';
import { PatrolsModule } from './modules/patrols';
import { ComplianceModule } from './modules/compliance';
import { Gb28181Module } from './modules/gb28181';
import { NotificationsModule } from './modules/notifications';
import { OpsModule } from './modules/ops';
import { VideoModule } from './modules/video';

/** Capability modules, in dependency order. Each later capability appends itself here. */
const CAPABILITIES = [
  AuditLogModule,
  AuthModule,
  ConsoleEventsModule,
  RegistryModule,
  DeviceHealthModule,
  AlarmsModule,
  PatrolsModule,
  ComplianceModule,
  Gb28181Module,
  NotificationsModule,
  VideoModule,
];

@Module({})
export class AppModule {
  static forRoot(config: AppConfig): DynamicModule {
    const api = config.role !== 'worker';
    return {
      module: AppModule,
      imports: [
        ConfigModule.forRoot(config),
        DatabaseModule,
        RedisModule,
        QueueModule,
        RetentionModule,
        TabularModule,
        HeavyReadsModule,
        ...CAPABILITIES,
        ...(api ? [ConsoleModule, OpsModule] : []),
      ],
    };
  }
}
