import { BeforeApplicationShutdown, Inject, Module, OnApplicationBootstrap } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '../../config/config';
import { AlarmsModule } from '../alarms';
import { DeviceHealthModule } from '../device-health';
import { RegistryModule } from '../registry';
import { GbAlarms } from './gb-alarms';
import { GbCameras } from './gb-cameras';
import { GbCascade } from './gb-cascade';
import { GbChannelStatus } from './gb-channel-status';
import { GbCatalog } from './gb-catalog';
import { GbCommands } from './gb-commands';
import { GbDeviceStates } from './gb-device-states';
import { GbKeepalive } from './gb-keepalive';
import { GbRegistrar } from './gb-registrar';
import { Gb28181Controller } from './gb28181.controller';
import { Gb28181Store } from './gb28181.store';
import { SipClient } from './sip-client';
import { SipEndpoint } from './sip-endpoint';
import { SipServer } from './sip-server';
import { SipWorkers } from './sip-workers';

/**
 * GB/T 28181 (issue 7). The SIP server runs in the api and all roles when `gb28181.enabled`;
 * exactly one process per host can own the port, so run one api process with it enabled (the
 * others with SHOUHU__GB28181__ENABLED=false). The admin routes work in any HTTP process; the
 * live registration view comes from the process that runs the SIP server.
 *
 * Pieces, each depending only on those below it: SipServer (lifecycle, routing) → GbRegistrar,
 * GbKeepalive, GbAlarms, GbCatalog (the handlers) → GbCameras (device ↔ registry cameras),
 * SipClient (outgoing transactions) → SipEndpoint (socket, retransmission cache, replies),
 * GbDeviceStates (per-device memory + write-behind) → Gb28181Store (gb_devices, gb_channels).
 */
@Module({
  imports: [RegistryModule, DeviceHealthModule, AlarmsModule],
  controllers: [Gb28181Controller],
  providers: [
    Gb28181Store,
    GbDeviceStates,
    SipEndpoint,
    SipWorkers,
    SipClient,
    GbCameras,
    GbChannelStatus,
    GbCatalog,
    GbCommands,
    GbRegistrar,
    GbKeepalive,
    GbAlarms,
    GbCascade,
    SipServer,
  ],
  exports: [SipServer],
})
export class Gb28181Module implements OnApplicationBootstrap, BeforeApplicationShutdown {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly sip: SipServer,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    if (this.config.gb28181.enabled && this.config.role !== 'worker') await this.sip.start();
  }

  async beforeApplicationShutdown(): Promise<void> {
    await this.sip.stop();
  }
}
