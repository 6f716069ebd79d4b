import { Body, Controller, Delete, Get, HttpCode, Post, Query } from '@nestjs/common';
import { UuidParam } from '../../infra/http/params';
import { ApiBearerAuth, ApiPropertyOptional, ApiTags } from '@nestjs/swagger';
import { IsOptional, IsUUID } from 'class-validator';
import { Roles } from '../../infra/access/decorators';
import { DeviceCredentialsService } from './device-credentials.service';
import { CreateDeviceCredentialDto } from './dto';
import type { DeviceCredential } from './entities/device-credential.entity';
import { viewOf } from '../../infra/http/views';

/** A credential as listed (never its secret hash; the secret itself is shown once, by create). */
const credentialView = viewOf<DeviceCredential>()(['id', 'keyId', 'kind', 'subjectId', 'schoolId', 'label', 'revokedAt', 'createdAt']);

class CredentialQuery {
  @ApiPropertyOptional() @IsOptional() @IsUUID() subjectId?: string;
  @ApiPropertyOptional() @IsOptional() @IsUUID() schoolId?: string;
}

@ApiTags('device-credentials')
@ApiBearerAuth()
@Controller('device-credentials')
export class DeviceCredentialsController {
  constructor(private readonly creds: DeviceCredentialsService) {}

  /** Lists device credentials (kind, subject, school, label, revoked); never the secret or its hash. */
  @Roles('admin')
  @Get()
  async list(@Query() q: CredentialQuery) {
    return (await this.creds.list(q)).map(credentialView);
  }

  /** Creates a device credential. The secret is shown once, in this response; only its hash is stored. */
  @Roles('admin')
  @Post()
  create(@Body() dto: CreateDeviceCredentialDto) {
    return this.creds.create(dto);
  }

  /** Revokes a device credential: the device's next request is refused 401. Audited. */
  @Roles('admin')
  @Delete(':id')
  @HttpCode(204)
  async revoke(@UuidParam() id: string): Promise<void> {
    await this.creds.revoke(id);
  }
}
