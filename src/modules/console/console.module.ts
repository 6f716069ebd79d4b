import { Global, Module } from '@nestjs/common';
import { ConsoleEventsService } from './console-events.service';
import { ConsoleGateway } from './console.gateway';

/** Events are appended from any role; the gateway (sockets) exists only in the api role. */
@Global()
@Module({ providers: [ConsoleEventsService], exports: [ConsoleEventsService] })
export class ConsoleEventsModule {}

@Module({ providers: [ConsoleGateway], exports: [ConsoleGateway] })
export class ConsoleModule {}
