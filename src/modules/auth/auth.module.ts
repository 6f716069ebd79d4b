import { Global, Inject, Module, OnModuleInit } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { TypeOrmModule } from '@nestjs/typeorm';
import { APP_CONFIG, AppConfig } from '../../config/config';
import { ACTOR_NAMES } from '../audit-log';
import { JobName } from '../../infra/queue/queue.catalogue';
import { QueueService } from '../../infra/queue/queue.service';
import { AuthController } from './auth.controller';
import { AuthGuard } from './auth.guard';
import { AuthService } from './auth.service';
import { DeviceCredentialsController } from './device-credentials.controller';
import { DeviceCredentialsService } from './device-credentials.service';
import { DeviceCredential } from './entities/device-credential.entity';
import { RefreshToken } from './entities/refresh-token.entity';
import { User } from './entities/user.entity';
import { RevocationsService } from './revocations.service';
import { TokenService } from './token.service';
import { UsersController } from './users.controller';
import { UsersService } from './users.service';

@Global()
@Module({
  imports: [TypeOrmModule.forFeature([User, RefreshToken, DeviceCredential])],
  controllers: [AuthController, UsersController, DeviceCredentialsController],
  providers: [
    RevocationsService,
    TokenService,
    AuthService,
    UsersService,
    DeviceCredentialsService,
    { provide: APP_GUARD, useClass: AuthGuard },
    // The audit log names its actors by display name through this (audit-log is a layer below: it cannot import us).
    { provide: ACTOR_NAMES, useExisting: UsersService },
  ],
  exports: [RevocationsService, TokenService, UsersService, DeviceCredentialsService, ACTOR_NAMES],
})
export class AuthModule implements OnModuleInit {
  constructor(
    @Inject(QueueService) private readonly queue: QueueService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly auth: AuthService,
  ) {
    this.queue.handle(JobName.PruneRefreshTokens, (p) => this.auth.pruneRefreshTokens(p.olderThanDays));
  }

  async onModuleInit(): Promise<void> {
    await this.queue.upsertScheduler(
      'auth.prune-refresh-tokens',
      JobName.PruneRefreshTokens,
      { pattern: this.config.auth.pruneRefreshTokensCron },
      { olderThanDays: 1 },
    );
  }
}
