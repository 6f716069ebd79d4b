import { Inject, Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, EntityManager } from 'typeorm';
import { APP_CONFIG, AppConfig } from '../../config/config';
import { ErrorCode, Errors } from '../../infra/http/errors';
import { AuditService } from '../audit-log';
import { ConsoleEventsService } from '../console-events';
import type { ChannelUse } from './channel-uses';
import { CreateChannelDto, SilenceChannelDto, UpdateChannelDto } from './dto';
import { renderMessage } from './message';
import type { ChannelKind } from './notifications.constants';
import { notificationMetrics } from './notifications.metrics';
import { PolicyService } from './policy.service';
import { ChannelTarget, ProviderAnswer, sendOnce, withoutUrlSecrets } from './providers';
import { refusedTarget, TargetResolver } from './target-address';

export interface ChannelRow {
  id: string;
  kind: ChannelKind;
  name: string;
  webhook_url: string;
  secret: string;
  template: Record<string, unknown> | null;
  enabled: boolean;
  silenced_until: Date | null;
  silence_reason: string | null;
  failing_since: Date | null;
  last_error: string | null;
  updated_at: Date;
}

/** A channel as answered to clients: the webhook masked, the secret never. */
export interface ChannelView {
  id: string;
  kind: ChannelKind;
  name: string;
  webhookUrl: string;
  hasSecret: boolean;
  template: Record<string, unknown> | null;
  enabled: boolean;
  silencedUntil: string | null;
  silenceReason: string | null;
  failingSince: string | null;
  lastError: string | null;
  /** What the console shows: disabled, silenced (maintenance window), failing, ok. */
  state: 'disabled' | 'silenced' | 'failing' | 'ok';
}

/** Keeps a URL recognisable without its key: every query value and a long last path segment show their last 4 characters. */
export function maskUrl(raw: string): string {
  try {
    const u = new URL(raw);
    const mask = (v: string) => (v.length > 4 ? `…${v.slice(-4)}` : '…');
    for (const [k, v] of [...u.searchParams]) u.searchParams.set(k, mask(v));
    const parts = u.pathname.split('/');
    const last = parts[parts.length - 1];
    if (last.length >= 16) parts[parts.length - 1] = mask(last);
    u.pathname = parts.join('/');
    u.username = '';
    u.password = '';
    return decodeURI(u.toString());
  } catch {
    return '…';
  }
}

export function isSilenced(c: Pick<ChannelRow, 'silenced_until'>, now = new Date()): boolean {
  return !!c.silenced_until && new Date(c.silenced_until) > now;
}

export function toTarget(c: ChannelRow): ChannelTarget {
  return { kind: c.kind, webhookUrl: c.webhook_url, secret: c.secret, template: c.template };
}

const MAX_SILENCE_MS = 7 * 86400_000;

/**
 * Notification channels: each a real outbound integration with its own webhook and secret
 * (admins manage them; secrets are write-only). A supervisor may silence one for a maintenance
 * window (audited); messages due meanwhile are recorded as suppressed, and the console — not a
 * channel — always shows the alarm. Failing and recovering are console events and metrics.
 */
@Injectable()
export class ChannelsService {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @InjectDataSource() private readonly db: DataSource,
    private readonly audit: AuditService,
    private readonly events: ConsoleEventsService,
    private readonly policy: PolicyService,
    private readonly resolver: TargetResolver,
  ) {}

  view(c: ChannelRow, now = new Date()): ChannelView {
    const silenced = isSilenced(c, now);
    return {
      id: c.id,
      kind: c.kind,
      name: c.name,
      webhookUrl: maskUrl(c.webhook_url),
      hasSecret: c.secret !== '',
      template: c.template,
      enabled: c.enabled,
      silencedUntil: silenced ? new Date(c.silenced_until!).toISOString() : null,
      silenceReason: silenced ? c.silence_reason : null,
      failingSince: c.failing_since ? new Date(c.failing_since).toISOString() : null,
      lastError: c.last_error === null ? null : withoutUrlSecrets(c.last_error), // stored before answers were scrubbed, too
      state: !c.enabled ? 'disabled' : silenced ? 'silenced' : c.failing_since ? 'failing' : 'ok',
    };
  }

  async rows(m: EntityManager | DataSource = this.db): Promise<ChannelRow[]> {
    return m.query(`SELECT * FROM notification_channels ORDER BY name`);
  }

  async list(): Promise<ChannelView[]> {
    const now = new Date();
    return (await this.rows()).map((c) => this.view(c, now));
  }

  async row(id: string, m: EntityManager | DataSource = this.db, lock = false): Promise<ChannelRow> {
    const [c] = (await m.query(`SELECT * FROM notification_channels WHERE id = $1${lock ? ' FOR UPDATE' : ''}`, [id])) as ChannelRow[];
    if (!c) throw Errors.notFound(ErrorCode.NOTIFICATION_CHANNEL.NOT_FOUND, id);
    return c;
  }

  /**
   * Kind-specific rules: an http(s) URL to a public address (target-address.ts; unless
   * notifications.allowPrivateTargets); the SMS gateway signs with a secret of ≥ 16 characters.
   */
  private async check(kind: ChannelKind, webhookUrl: string, secret: string, urlChanged = true): Promise<void> {
    if (!urlChanged) return this.checkSecret(kind, secret);
    let u: URL;
    try {
      u = new URL(webhookUrl);
    } catch {
      throw Errors.validation([{ field: 'webhookUrl', reason: 'must be a URL' }]);
    }
    if (u.protocol !== 'https:' && u.protocol !== 'http:') throw Errors.validation([{ field: 'webhookUrl', reason: 'must be http or https' }]);
    // fetch refuses a URL with credentials (and its error quoted the whole URL, keys included: attack pass 9 #2); providers take keys in the query.
    if (u.username || u.password) throw Errors.validation([{ field: 'webhookUrl', reason: 'must not carry a user name or password' }]);
    if (this.config.env === 'production' && u.protocol !== 'https:') throw Errors.validation([{ field: 'webhookUrl', reason: 'must be https in production' }]);
    const target = await refusedTarget(u, this.config.notifications.allowPrivateTargets, { resolve: (h) => this.resolver.resolve(h) });
    if (target && 'refused' in target)
      throw Errors.validation([{ field: 'webhookUrl', reason: `${target.refused}: not a provider's address (notifications.allowPrivateTargets)` }]);
    // A name whose address cannot be checked now is not saved: sending to it would be refused too (attack pass 10 #3).
    if (target) throw Errors.validation([{ field: 'webhookUrl', reason: `${target.unresolved}: try again, or check the host name` }]);
    this.checkSecret(kind, secret);
  }

  private checkSecret(kind: ChannelKind, secret: string): void {
    // Characters, not UTF-16 units (8 emoji were "16"), and not blanks (16 spaces passed: attack pass 9 #8).
    if (kind === 'sms' && [...secret.trim()].length < 16)
      throw Errors.validation([{ field: 'secret', reason: 'the SMS gateway signature needs a secret of at least 16 characters' }]);
  }

  private audited = (c: ChannelRow) => ({ ...c, webhook_url: maskUrl(c.webhook_url), secret: c.secret ? '[redacted]' : '' });

  async create(dto: CreateChannelDto): Promise<ChannelView> {
    const secret = dto.secret ?? '';
    await this.check(dto.kind, dto.webhookUrl, secret);
    if (dto.template && dto.kind !== 'sms') throw Errors.validation([{ field: 'template', reason: 'only an SMS gateway takes a template' }]);
    const row = await this.db.transaction(async (m) => {
      const [row] = (await m.query(
        `INSERT INTO notification_channels (kind, name, webhook_url, secret, template, enabled) VALUES ($1, $2, $3, $4, $5, $6) RETURNING *`,
        [dto.kind, dto.name.trim(), dto.webhookUrl, secret, dto.template ? JSON.stringify(dto.template) : null, dto.enabled ?? true],
      )) as ChannelRow[];
      await this.audit.record(m, { action: 'create', entity: 'notification_channel', entityId: row.id, after: this.audited(row) });
      return row;
    });
    return this.view(row);
  }

  /**
   * Escalation levels that name the channel, before it stops sending (deleted, or disabled): refused with the levels
   * named (409 IN_USE) unless `detach`, which takes it out of them in the caller's transaction (audited); refused
   * even then (409 LEVEL_LEFT_UNREACHABLE) when a level would be left reaching nobody, or its people with no channel —
   * which includes, for the last enabled channel, every level whose people go through every enabled channel: nothing
   * can be taken out of those, so that is the answer with or without `detach` (IN_USE first, as ever, when levels also name
   * the channel and `detach` is not given; attack pass 10 #4).
   * Answers the levels it was taken out of. The channel's row must be locked already (its lock comes before the policies').
   */
  private async release(m: EntityManager, c: ChannelRow, detach: boolean, actorId: string | null, what: 'delete' | 'disable'): Promise<ChannelUse[]> {
    const uses = await this.policy.channelUses(m, c.id);
    if (!uses.length) return [];
    const named = uses.filter((u) => u.usedAs.length > 0);
    const where = uses.map((u) => `${u.priority} level ${u.level}${u.onlyChannel ? ' (its only channel)' : ''}`).join(', ');
    const details = { channelId: c.id, levels: uses };
    if (!detach && named.length)
      throw Errors.conflict(
        ErrorCode.NOTIFICATION_CHANNEL.IN_USE,
        `Escalation policies name this channel (${where}): to ${what} it, repeat with detach=true to take it out of those levels as well`,
        details,
      );
    const stuck = uses
      .filter((u) => u.leftUnreachable)
      .map((u) => `${u.priority} level ${u.level}${u.usedAs.length ? '' : ' (every enabled channel: this is the last one enabled)'}`);
    if (stuck.length)
      throw Errors.conflict(
        ErrorCode.NOTIFICATION_CHANNEL.LEVEL_LEFT_UNREACHABLE,
        `Without this channel ${stuck.join(', ')} could not notify the people it names: choose another channel for it in the escalation policy, or add or enable another channel, first`,
        details,
      );
    await this.policy.detachChannel(m, c.id, actorId);
    return named;
  }

  async update(id: string, dto: UpdateChannelDto, detach = false, actorId: string | null = null): Promise<ChannelView> {
    const row = await this.db.transaction(async (m) => {
      const before = await this.row(id, m, true);
      const url = dto.webhookUrl ?? before.webhook_url;
      const secret = dto.secret ?? before.secret;
      // Only what the PATCH changes is judged: a channel saved under looser rules (or whose name now
      // resolves to a private address) must still be disabled or renamed; sending to it stays refused
      // at send time (providers.ts re-checks the target before every attempt).
      if (url !== before.webhook_url || secret !== before.secret) await this.check(before.kind, url, secret, url !== before.webhook_url);
      if (dto.template && before.kind !== 'sms') throw Errors.validation([{ field: 'template', reason: 'only an SMS gateway takes a template' }]);
      const detached = before.enabled && dto.enabled === false ? await this.release(m, before, detach, actorId, 'disable') : [];
      const [[row]] = (await m.query(
        `UPDATE notification_channels SET name = $2, webhook_url = $3, secret = $4, template = $5, enabled = $6,
           failing_since = CASE WHEN $3 <> webhook_url OR $4 <> secret THEN NULL ELSE failing_since END, updated_at = now()
         WHERE id = $1 RETURNING *`,
        [
          id,
          dto.name?.trim() ?? before.name,
          url,
          secret,
          dto.template !== undefined ? JSON.stringify(dto.template) : before.template ? JSON.stringify(before.template) : null,
          dto.enabled ?? before.enabled,
        ],
      )) as [ChannelRow[]];
      await this.audit.record(m, {
        action: 'update',
        entity: 'notification_channel',
        entityId: id,
        before: this.audited(before),
        after: {
          ...this.audited(row),
          ...(detached.length ? { detachedFrom: detached.map(({ priority, level, usedAs }) => ({ priority, level, usedAs })) } : {}),
        },
      });
      return row;
    });
    return this.view(row);
  }

  /** Deletes a channel; one escalation levels name only with `detach` (release). */
  async remove(id: string, detach = false, actorId: string | null = null): Promise<void> {
    await this.db.transaction(async (m) => {
      const before = await this.row(id, m, true);
      const detached = await this.release(m, before, detach, actorId, 'delete');
      await m.query(`DELETE FROM notification_channels WHERE id = $1`, [id]);
      await this.audit.record(m, {
        action: 'delete',
        entity: 'notification_channel',
        entityId: id,
        before: this.audited(before),
        after: detached.length ? { detachedFrom: detached.map(({ priority, level, usedAs }) => ({ priority, level, usedAs })) } : null,
      });
    });
  }

  async silence(id: string, dto: SilenceChannelDto): Promise<ChannelView> {
    const until = new Date(dto.until);
    const now = Date.now();
    if (!(until.getTime() > now)) throw Errors.validation([{ field: 'until', reason: 'must be in the future' }]);
    if (until.getTime() - now > MAX_SILENCE_MS) throw Errors.validation([{ field: 'until', reason: 'a maintenance window lasts at most 7 days' }]);
    return this.setSilence(id, until, dto.reason.trim());
  }

  async unsilence(id: string): Promise<ChannelView> {
    return this.setSilence(id, null, null);
  }

  private async setSilence(id: string, until: Date | null, reason: string | null): Promise<ChannelView> {
    const row = await this.db.transaction(async (m) => {
      const before = await this.row(id, m, true);
      const [[row]] = (await m.query(
        `UPDATE notification_channels SET silenced_until = $2, silence_reason = $3, updated_at = now() WHERE id = $1 RETURNING *`,
        [id, until, reason],
      )) as [ChannelRow[]];
      await this.audit.record(m, {
        action: until ? 'silence' : 'unsilence',
        entity: 'notification_channel',
        entityId: id,
        before: { silencedUntil: before.silenced_until, silenceReason: before.silence_reason },
        after: { silencedUntil: until, silenceReason: reason },
      });
      await this.events.append(m, {
        type: 'notification.channel',
        schoolId: null,
        payload: {
          channelId: id,
          name: row.name,
          kind: row.kind,
          state: until ? 'silenced' : 'unsilenced',
          error: null,
          silencedUntil: until?.toISOString() ?? null,
        },
      });
      return row;
    });
    return this.view(row);
  }

  /**
   * Records the outcome of an attempt on the channel's health, in the caller's transaction: the
   * first failure makes it failing (a console banner), the first success after that recovers it.
   */
  async recordHealth(m: EntityManager, c: ChannelRow, answer: ProviderAnswer): Promise<void> {
    const error = answer.ok ? null : `${answer.code} ${answer.detail}`.trim().slice(0, 300);
    const [[changed]] = (await m.query(
      answer.ok
        ? `UPDATE notification_channels SET failing_since = NULL, last_error = NULL WHERE id = $1 AND failing_since IS NOT NULL RETURNING id`
        : `UPDATE notification_channels SET failing_since = coalesce(failing_since, now()), last_error = $2
           WHERE id = $1 RETURNING (failing_since = now()) AS started`,
      answer.ok ? [c.id] : [c.id, error],
    )) as [{ id?: string; started?: boolean }[]];
    const transition = answer.ok ? !!changed : !!changed?.started;
    notificationMetrics.channelFailing.set({ channel: c.name, kind: c.kind }, answer.ok ? 0 : 1);
    if (!transition) return;
    await this.events.append(m, {
      type: 'notification.channel',
      schoolId: null,
      payload: { channelId: c.id, name: c.name, kind: c.kind, state: answer.ok ? 'recovered' : 'failing', error, silencedUntil: null },
    });
  }

  /** Sends a test message through a channel now (admins check a new webhook); answers the provider's reply. */
  async test(id: string): Promise<ProviderAnswer> {
    const c = await this.row(id);
    const now = new Date();
    const msg = renderMessage({
      incident: {
        incidentId: '00000000-0000-0000-0000-000000000000',
        schoolName: '测试学校',
        location: '测试位置',
        type: 'other',
        priority: 'P4',
        firstPressAt: now.toISOString(),
        drill: true,
      } as never,
      level: 0,
      recipient: '渠道测试（无需处理）',
      phone: null,
      link: `${this.config.notifications.publicBaseUrl}/console/`,
      now,
    });
    const answer = await sendOnce(toTarget(c), msg, {
      timeoutMs: this.config.notifications.timeoutMs,
      allowPrivateTargets: this.config.notifications.allowPrivateTargets,
      resolve: (h) => this.resolver.resolve(h),
      idempotencyKey: `test-${id}-${now.getTime()}`,
      now,
      mentionMobiles: [],
    });
    await this.db.transaction((m) => this.recordHealth(m, c, answer));
    return answer;
  }
}
