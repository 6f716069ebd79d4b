/** The public surface of the auth module: other modules and the app import only from here (checked by npm run lint). */
export { AuthModule } from './auth.module';
export { DeviceCredentialsService } from './device-credentials.service';
export { RevocationsService, type Revocation } from './revocations.service';
export { TokenService } from './token.service';
export { UsersService, type UserChanged, type UserChangedListener, type UserFacts } from './users.service';
