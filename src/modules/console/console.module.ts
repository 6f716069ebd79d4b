import { Module } from '@nestjs/common';
import { AlarmsModule } from '../alarms';
import { DeviceHealthModule } from '../device-health';
import { ConsoleFeed } from './console-feed.service';
import { ConsoleStateService } from './console-state';
import { ConsoleGateway } from './console.gateway';
import { ConsoleWebService } from './console-web';

/**
 * The operators' live console (api role only): the feed reads the event log
 * (src/modules/console-events), the gateway serves sockets, snapshots and actions, and the web
 * client is served at /console.
 */
@Module({
  imports: [AlarmsModule, DeviceHealthModule],
  providers: [ConsoleFeed, ConsoleGateway, ConsoleWebService, ConsoleStateService],
  exports: [ConsoleGateway, ConsoleFeed],
})
export class ConsoleModule {}
