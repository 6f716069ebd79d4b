import { BeforeApplicationShutdown, Inject, Module, OnApplicationBootstrap } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '../../config/config';
import { AlarmsModule } from '../alarms/alarms.module';
import { DeviceHealthModule } from '../device-health/device-health.module';
import { RegistryModule } from '../registry/registry.module';
import { Gb28181Controller } from './gb28181.controller';
import { Gb28181Service } from './gb28181.service';
import { Gb28181Store } from './gb28181.store';

/**
 * GB/T 28181 (issue 7). The SIP server runs in the api and all roles when `gb28181.enabled`;
 * exactly one process per host can own the port, so run one api process with it enabled (the
 * others with SHOUHU__GB28181__ENABLED=false). The admin routes work in any HTTP process; the
 * live registration view comes from the process that runs the SIP server.
 */
@Module({
  imports: [RegistryModule, DeviceHealthModule, AlarmsModule],
  controllers: [Gb28181Controller],
  providers: [Gb28181Service, Gb28181Store],
  exports: [Gb28181Service],
})
export class Gb28181Module implements OnApplicationBootstrap, BeforeApplicationShutdown {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly sip: Gb28181Service,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    if (this.config.gb28181.enabled && this.config.role !== 'worker') await this.sip.start();
  }

  async beforeApplicationShutdown(): Promise<void> {
    await this.sip.stop();
  }
}
