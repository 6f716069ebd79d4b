import { Inject, Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, EntityManager } from 'typeorm';
import { APP_CONFIG, AppConfig } from '../../config/config';
import { PRIORITIES, type Priority } from '../../config/sections';
import { Errors, FieldError } from '../../infra/http/errors';
import { AuditService } from '../audit-log';
import { UsersService } from '../auth';
import { ChannelUse, channelUses, namesChannel, withoutChannel } from './channel-uses';
import { UpdatePolicyDto } from './dto';
import type { DutyRole } from './notifications.constants';
import { assertDutyPerson } from './users';

export type PolicyTarget = { kind: 'duty'; dutyRole: DutyRole } | { kind: 'user'; userId: string } | { kind: 'group'; channelId: string };

/** One escalation level: whom to tell and through which channels (null = every enabled channel). */
export interface PolicyLevel {
  targets: PolicyTarget[];
  channelIds: string[] | null;
}

export interface PolicyView {
  priority: Priority;
  /** Levels with the delay after which each is reached (alarms.escalationSeconds: the timers are the alarms module's). */
  levels: (PolicyLevel & { level: number; afterSeconds: number })[];
  source: 'default' | 'stored';
  updatedAt: string | null;
}

/**
 * The escalation policy per priority: for each escalation level, whom to notify (the person on
 * duty in a role, a named user, a group channel) and through which channels. Defaults come from
 * config (one level per alarms.escalationSeconds delay, the duty roles of
 * notifications.defaultLevelRoles, every enabled channel); admins store their own.
 */
@Injectable()
export class PolicyService {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @InjectDataSource() private readonly db: DataSource,
    private readonly users: UsersService,
    private readonly audit: AuditService,
  ) {}

  private delays(p: Priority): number[] {
    return this.config.alarms.escalationSeconds[p] ?? [];
  }

  defaults(p: Priority): PolicyLevel[] {
    const roles = this.config.notifications.defaultLevelRoles;
    return this.delays(p).map((_, i) => ({ targets: [{ kind: 'duty', dutyRole: roles[Math.min(i, roles.length - 1)] }], channelIds: null }));
  }

  private shape(p: Priority, levels: PolicyLevel[], source: PolicyView['source'], updatedAt: Date | null): PolicyView {
    const delays = this.delays(p);
    return {
      priority: p,
      levels: delays.map((afterSeconds, i) => ({ level: i + 1, afterSeconds, ...(levels[i] ?? this.defaults(p)[i]) })),
      source,
      updatedAt: updatedAt ? new Date(updatedAt).toISOString() : null,
    };
  }

  async list(): Promise<PolicyView[]> {
    const rows: { priority: Priority; levels: PolicyLevel[]; updated_at: Date }[] = await this.db.query(`SELECT * FROM escalation_policies`);
    return PRIORITIES.map((p) => {
      const r = rows.find((x) => x.priority === p);
      return r ? this.shape(p, r.levels, 'stored', r.updated_at) : this.shape(p, this.defaults(p), 'default', null);
    });
  }

  async get(p: Priority): Promise<PolicyView> {
    const [r] = (await this.db.query(`SELECT * FROM escalation_policies WHERE priority = $1`, [p])) as { levels: PolicyLevel[]; updated_at: Date }[];
    return r ? this.shape(p, r.levels, 'stored', r.updated_at) : this.shape(p, this.defaults(p), 'default', null);
  }

  /** The level to act on, or null when the policy has none (more timers than levels cannot happen: levels follow the delays). */
  async level(p: Priority, level: number): Promise<PolicyLevel | null> {
    return (await this.get(p)).levels[level - 1] ?? null;
  }

  async update(p: Priority, dto: UpdatePolicyDto, actorId: string | null): Promise<PolicyView> {
    const delays = this.delays(p);
    if (dto.levels.length !== delays.length)
      throw Errors.validation([
        {
          field: 'levels',
          reason: `${p} escalates ${delays.length} time(s) (alarms.escalationSeconds: ${delays.join(', ')} s): give exactly one level for each`,
        },
      ]);
    const channelIds = new Set((await this.db.query(`SELECT id FROM notification_channels`)).map((r: { id: string }) => r.id));
    const problems: FieldError[] = [];
    const levels: PolicyLevel[] = [];
    for (const [i, l] of dto.levels.entries()) {
      const targets: PolicyTarget[] = [];
      for (const [j, t] of l.targets.entries()) {
        const field = `levels[${i}].targets[${j}]`;
        if (t.kind === 'duty') {
          if (!t.dutyRole) problems.push({ field: `${field}.dutyRole`, reason: 'required for kind duty' });
          else targets.push({ kind: 'duty', dutyRole: t.dutyRole });
        } else if (t.kind === 'user') {
          if (!t.userId) problems.push({ field: `${field}.userId`, reason: 'required for kind user' });
          else {
            try {
              await assertDutyPerson(this.users, t.userId, `${field}.userId`);
              targets.push({ kind: 'user', userId: t.userId });
            } catch (e) {
              problems.push(...((e as { details?: { fields?: FieldError[] } }).details?.fields ?? []));
            }
          }
        } else if (!t.channelId) problems.push({ field: `${field}.channelId`, reason: 'required for kind group' });
        else if (!channelIds.has(t.channelId)) problems.push({ field: `${field}.channelId`, reason: 'no such channel' });
        else targets.push({ kind: 'group', channelId: t.channelId });
      }
      for (const [j, c] of (l.channelIds ?? []).entries())
        if (!channelIds.has(c)) problems.push({ field: `levels[${i}].channelIds[${j}]`, reason: 'no such channel' });
      // [] is "through no channel": the level's people would be told nothing (attack pass 9 #9). Null/absent is every enabled channel.
      if (l.channelIds && l.channelIds.length === 0 && l.targets.some((t) => t.kind !== 'group'))
        problems.push({ field: `levels[${i}].channelIds`, reason: 'must name at least one channel, or be left out for every enabled channel' });
      // A person or group named twice is told once anyway: stored once.
      const unique = [
        ...new Map(targets.map((t) => [t.kind === 'duty' ? `d${t.dutyRole}` : t.kind === 'user' ? `u${t.userId}` : `g${t.channelId}`, t])).values(),
      ];
      levels.push({ targets: unique, channelIds: l.channelIds ? [...new Set(l.channelIds)] : null });
    }
    if (problems.length) throw Errors.validation(problems);
    return this.db.transaction(async (m) => {
      // The channels it names are held (FOR SHARE, before the policy row: the order a channel's delete or disable locks in)
      // until this commits: one deleted meanwhile is refused here, and a delete waiting on them then sees this policy.
      const named = [...new Set(levels.flatMap((l) => [...(l.channelIds ?? []), ...l.targets.flatMap((t) => (t.kind === 'group' ? [t.channelId] : []))]))];
      const held = new Set(
        ((await m.query(`SELECT id FROM notification_channels WHERE id = ANY($1::uuid[]) ORDER BY id FOR SHARE`, [named.sort()])) as { id: string }[]).map(
          (r) => r.id,
        ),
      );
      const gone = levels.flatMap((l, i) => [
        ...l.targets.flatMap((t, j) =>
          t.kind === 'group' && !held.has(t.channelId) ? [{ field: `levels[${i}].targets[${j}].channelId`, reason: 'no such channel' }] : [],
        ),
        ...(l.channelIds ?? []).flatMap((c, j) => (held.has(c) ? [] : [{ field: `levels[${i}].channelIds[${j}]`, reason: 'no such channel' }])),
      ]);
      if (gone.length) throw Errors.validation(gone);
      const [before] = (await m.query(`SELECT levels FROM escalation_policies WHERE priority = $1 FOR UPDATE`, [p])) as { levels: PolicyLevel[] }[];
      const [row] = (await m.query(
        `INSERT INTO escalation_policies (priority, levels, updated_by_id, updated_at) VALUES ($1, $2, $3, now())
         ON CONFLICT (priority) DO UPDATE SET levels = EXCLUDED.levels, updated_by_id = EXCLUDED.updated_by_id, updated_at = now() RETURNING *`,
        [p, JSON.stringify(levels), actorId],
      )) as { levels: PolicyLevel[]; updated_at: Date }[];
      // The policy's row is its priority (escalation_policies' key): what an auditor filters the log by (attack pass 10 #2).
      await this.audit.record(m, {
        action: 'update',
        entity: 'escalation_policy',
        entityId: p,
        before: before ?? { default: this.defaults(p) },
        after: { priority: p, levels },
      });
      return this.shape(p, row.levels, 'stored', row.updated_at);
    });
  }

  /**
   * The levels the channel's removal touches, each with what it would be left with without it (channel-uses.ts), in the caller's
   * transaction: those of the stored policies that name it and, when it is the last enabled channel, every level whose people go
   * through every enabled channel — the defaults from the configuration included (duty roles, every enabled channel), for the
   * priorities with no stored policy. Only the levels the escalation delays reach count (alarms.escalationSeconds: a stored
   * level past them is never used). The stored policies stay locked until the transaction ends (the caller may detach the channel
   * next); removals are taken one at a time, so that two admins each removing one of the last two enabled channels cannot both
   * see the other one still there.
   */
  async channelUses(m: EntityManager, channelId: string): Promise<ChannelUse[]> {
    await m.query(`SELECT pg_advisory_xact_lock(hashtext('notification_channels.release'))`);
    const rows = (await m.query(`SELECT priority, levels FROM escalation_policies ORDER BY priority FOR UPDATE`)) as {
      priority: Priority;
      levels: PolicyLevel[];
    }[];
    const enabled = new Set(((await m.query(`SELECT id FROM notification_channels WHERE enabled`)) as { id: string }[]).map((r) => r.id));
    const live = PRIORITIES.map((p) => ({
      priority: p,
      levels: (rows.find((r) => r.priority === p)?.levels ?? this.defaults(p)).slice(0, this.delays(p).length),
    }));
    return channelUses(live, channelId, enabled);
  }

  /**
   * Takes a channel out of every stored level that names it (its channel list, its group targets), in the caller's transaction
   * after channelUses (which locked the policies and said what each level keeps); one audit entry per policy changed, naming the
   * channel and the levels. A channel list left empty stays an empty list: it is never widened to "every enabled channel".
   */
  async detachChannel(m: EntityManager, channelId: string, actorId: string | null): Promise<void> {
    const rows = (await m.query(`SELECT priority, levels FROM escalation_policies ORDER BY priority FOR UPDATE`)) as {
      priority: Priority;
      levels: PolicyLevel[];
    }[];
    for (const r of rows) {
      const changed = r.levels.flatMap((l, i) => (namesChannel(l, channelId) ? [i + 1] : []));
      if (!changed.length) continue;
      const levels = r.levels.map((l) => withoutChannel(l, channelId));
      await m.query(`UPDATE escalation_policies SET levels = $2, updated_by_id = $3, updated_at = now() WHERE priority = $1`, [
        r.priority,
        JSON.stringify(levels),
        actorId,
      ]);
      await this.audit.record(m, {
        action: 'detach_channel',
        entity: 'escalation_policy',
        entityId: r.priority,
        before: { priority: r.priority, levels: r.levels },
        after: { priority: r.priority, levels, channelId, changedLevels: changed },
      });
    }
  }
}
