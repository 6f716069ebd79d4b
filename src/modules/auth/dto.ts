import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsBoolean, IsIn, IsOptional, IsString, IsUUID, Matches, MaxLength, MinLength, ValidateIf } from 'class-validator';
import { DEVICE_KINDS, DeviceKind, ROLE_NAMES, UserRole } from '../../infra/access/roles';
import { VisibleText } from '../../infra/text/person-name';

export class LoginDto {
  @ApiProperty({ example: 'operator1' }) @IsString() @MinLength(1) @MaxLength(64) username: string;
  @ApiProperty() @IsString() @MinLength(1) @MaxLength(256) password: string;
}

export class RefreshDto {
  @ApiProperty() @IsString() @MinLength(16) @MaxLength(256) refreshToken: string;
}

/**
 * A logout never fails for its body (attack pass 8: `{"refreshToken":123}` was a 400 and the session lived on):
 * the session of the Bearer ends whatever is sent; a refreshToken that is not a string of at most 256 characters
 * is ignored (AuthController.logout), a plausible one ends its session too.
 */
export class LogoutDto {
  @ApiPropertyOptional({ description: 'ignored unless a string of at most 256 characters' })
  refreshToken?: unknown;
}

export class CreateUserDto {
  @ApiProperty({ example: 'guard.jth01' })
  @IsString()
  @Matches(/^[A-Za-z0-9_.@-]{3,64}$/, { message: 'username: 3–64 letters, digits or _.@-' })
  username: string;
  @ApiPropertyOptional({ description: 'no control or invisible formatting characters (Cc, Cf: bidi overrides, zero-width)' })
  @IsOptional()
  @VisibleText(100)
  displayName?: string;
  @ApiProperty() @IsString() @MinLength(1) @MaxLength(256) password: string;
  @ApiProperty({ enum: ROLE_NAMES }) @IsIn(ROLE_NAMES) role: UserRole;
  @ApiPropertyOptional({ description: 'required for school_security, forbidden otherwise' })
  @ValidateIf((o: CreateUserDto) => o.role === 'school_security' || o.schoolId !== undefined)
  @IsUUID()
  schoolId?: string;
  @ApiPropertyOptional() @IsOptional() @IsString() @Matches(/^$|^\+?[0-9-]{5,20}$/, { message: 'phone: digits, dashes, optional leading +' }) phone?: string;
}

export class UpdateUserDto {
  @ApiPropertyOptional({ description: 'no control or invisible formatting characters (Cc, Cf: bidi overrides, zero-width)' })
  @IsOptional()
  @VisibleText(100)
  displayName?: string;
  @ApiPropertyOptional() @IsOptional() @IsString() @MinLength(1) @MaxLength(256) password?: string;
  @ApiPropertyOptional({ enum: ROLE_NAMES }) @IsOptional() @IsIn(ROLE_NAMES) role?: UserRole;
  @ApiPropertyOptional({ nullable: true }) @IsOptional() @ValidateIf((_, v) => v !== null) @IsUUID() schoolId?: string | null;
  @ApiPropertyOptional() @IsOptional() @IsString() @Matches(/^$|^\+?[0-9-]{5,20}$/) phone?: string;
  @ApiPropertyOptional() @IsOptional() @IsBoolean() disabled?: boolean;
}

export class ChangePasswordDto {
  @ApiProperty() @IsString() @MinLength(1) @MaxLength(256) currentPassword: string;
  @ApiProperty() @IsString() @MinLength(1) @MaxLength(256) newPassword: string;
}

export class CreateDeviceCredentialDto {
  @ApiProperty({ enum: DEVICE_KINDS }) @IsIn(DEVICE_KINDS) kind: DeviceKind;
  @ApiPropertyOptional({ description: 'camera or alarm device id; omitted for a gateway' })
  @ValidateIf((o: CreateDeviceCredentialDto) => o.kind !== 'gateway' || o.subjectId !== undefined)
  @IsUUID()
  subjectId?: string;
  @ApiPropertyOptional({ description: 'for a gateway: the school it may report for (omit for district-wide)' })
  @IsOptional()
  @IsUUID()
  schoolId?: string;
  @ApiPropertyOptional() @IsOptional() @IsString() @MaxLength(200) label?: string;
}
