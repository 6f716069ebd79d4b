import { Body, Controller, Get, HttpCode, Post, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import { CurrentUser, Roles } from '../../infra/access/decorators';
import type { AuthUser } from '../../infra/access/roles';
import { UuidParam } from '../../infra/http/params';
import { ACT_ROLES } from './alarms.access';
import { ShiftHandoverDto, ShiftHandoverQuery } from './dto';
import { HANDOVER_READ_ROLES, HandoversService } from './handovers.service';

/** Shift handover (交接班) at the control center: hand over (201), list, take over once (200; 409 HANDOVER.ALREADY_ACKNOWLEDGED / HANDOVER.OWN). */
@ApiTags('handovers')
@ApiBearerAuth()
@Controller('handovers')
export class HandoversController {
  constructor(private readonly handovers: HandoversService) {}

  /** Records the open alarms now, the shift's events and notes, and the note: `HandoverView`. */
  @Roles(...ACT_ROLES)
  @Post()
  create(@CurrentUser() user: AuthUser, @Body() dto: ShiftHandoverDto) {
    return this.handovers.create(user, dto);
  }

  /** Latest first: `{ items: HandoverView[] }`; `pending=true`: those not taken over yet. */
  @Roles(...HANDOVER_READ_ROLES)
  @Get()
  list(@CurrentUser() user: AuthUser, @Query() q: ShiftHandoverQuery) {
    return this.handovers.list(user, q);
  }

  /** The next operator takes over (once; not the one who handed over). */
  @Roles(...ACT_ROLES)
  @Post(':id/acknowledge')
  @HttpCode(200)
  acknowledge(@CurrentUser() user: AuthUser, @UuidParam() id: string) {
    return this.handovers.acknowledge(user, id);
  }
}
