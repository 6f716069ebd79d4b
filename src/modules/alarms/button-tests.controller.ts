import { Body, Controller, Delete, Get, HttpCode, Post } from '@nestjs/common';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import { CurrentUser, Roles } from '../../infra/access/decorators';
import type { AuthUser } from '../../infra/access/roles';
import { UuidParam } from '../../infra/http/params';
import { RAISE_ROLES, READ_ROLES } from './alarms.access';
import { ButtonTestsService } from './button-tests.service';
import { TestModeDto } from './dto';

/** Alarm-button self-tests (issue 11 §3): a guard's test mode for one button, and the test records. */
@ApiTags('incidents')
@ApiBearerAuth()
@Controller('alarm-buttons')
export class ButtonTestsController {
  constructor(private readonly tests: ButtonTestsService) {}

  /** Presses of this button in the next `minutes` are test presses. School staff: own school (else 404). */
  @Roles(...RAISE_ROLES)
  @Post(':id/test-mode')
  @HttpCode(200)
  start(@CurrentUser() user: AuthUser, @UuidParam() id: string, @Body() dto: TestModeDto) {
    return this.tests.startTestMode(user, id, dto.minutes);
  }

  /** Ends a button's test mode now: its presses are real alarms again. */
  @Roles(...RAISE_ROLES)
  @Delete(':id/test-mode')
  @HttpCode(200)
  end(@CurrentUser() user: AuthUser, @UuidParam() id: string) {
    return this.tests.endTestMode(user, id);
  }

  /** An alarm button's self-test records (test presses, tests by resolution), latest first. */
  @Roles(...READ_ROLES)
  @Get(':id/tests')
  list(@CurrentUser() user: AuthUser, @UuidParam() id: string) {
    return this.tests.list(user, id);
  }
}
