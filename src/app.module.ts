import { DynamicModule, Module } from '@nestjs/common';
import type { AppConfig } from './config/config';
import { ConfigModule } from './config/config.module';
import { DatabaseModule } from './infra/database/database.module';
import { QueueModule } from './infra/queue/queue.module';
import { RedisModule } from './infra/redis/redis.module';
import { AuditLogModule } from './modules/audit-log/audit-log.module';
import { AuthModule } from './modules/auth/auth.module';
import { ConsoleEventsModule } from './modules/console-events/console-events.module';
import { ConsoleModule } from './modules/console/console.module';
import { RegistryModule } from './modules/registry/registry.module';
import { DeviceHealthModule } from './modules/device-health/device-health.module';
import { AlarmsModule } from './modules/alarms/alarms.module';
import { PatrolsModule } from './modules/patrols/patrols.module';
import { ComplianceModule } from './modules/compliance/compliance.module';
import { Gb28181Module } from './modules/gb28181/gb28181.module';
import { OpsModule } from './modules/ops/ops.module';

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
];

@Module({})
export class AppModule {
  static forRoot(config: AppConfig): DynamicModule {
    const api = config.role !== 'worker';
    return {
      module: AppModule,
      imports: [ConfigModule.forRoot(config), DatabaseModule, RedisModule, QueueModule, ...CAPABILITIES, ...(api ? [ConsoleModule, OpsModule] : [])],
    };
  }
}
