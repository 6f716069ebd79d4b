import { Body, Controller, Delete, Get, HttpCode, Post, Query } from '@nestjs/common';
import { UuidParam } from '../../infra/http/params';
import { ApiBearerAuth, ApiPropertyOptional, ApiTags } from '@nestjs/swagger';
import { IsOptional, IsUUID } from 'class-validator';
import { Roles } from '../../infra/access/decorators';
import { DeviceCredentialsService } from './device-credentials.service';
import { CreateDeviceCredentialDto } from './dto';

class CredentialQuery {
  @ApiPropertyOptional() @IsOptional() @IsUUID() subjectId?: string;
  @ApiPropertyOptional() @IsOptional() @IsUUID() schoolId?: string;
}

@ApiTags('device-credentials')
@ApiBearerAuth()
@Controller('device-credentials')
export class DeviceCredentialsController {
  constructor(private readonly creds: DeviceCredentialsService) {}

  @Roles('admin')
  @Get()
  list(@Query() q: CredentialQuery) {
    return this.creds.list(q);
  }

  /** The secret is shown once, in this response; only its hash is stored. */
  @Roles('admin')
  @Post()
  create(@Body() dto: CreateDeviceCredentialDto) {
    return this.creds.create(dto);
  }

  @Roles('admin')
  @Delete(':id')
  @HttpCode(204)
  async revoke(@UuidParam() id: string): Promise<void> {
    await this.creds.revoke(id);
  }
}
