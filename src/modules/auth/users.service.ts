import { HttpStatus, Inject, Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, EntityManager } from 'typeorm';
import { APP_CONFIG, AppConfig } from '../../config/config';
import { DomainError, ErrorCode, Errors } from '../../infra/http/errors';
import { AuditService, type ActorNames } from '../audit-log';
import { CreateUserDto, UpdateUserDto } from './dto';
import { User } from './entities/user.entity';
import { hashPassword, verifyPassword } from './password';
import { TokenService } from './token.service';
import { visibleName } from '../../infra/text/person-name';
import type { UserRole } from '../../infra/access/roles';

/** A user as the modules above auth may read it when it changes: who, in which role and scope, reachable how, allowed in. */
export interface UserFacts {
  username: string;
  displayName: string;
  role: UserRole;
  schoolId: string | null;
  phone: string;
  disabled: boolean;
}

/** A user was changed (PATCH /users/:id, a password change): as it was and as it is. */
export interface UserChanged {
  userId: string;
  before: UserFacts;
  after: UserFacts;
}

/** Reacts to a user's change inside its transaction (UsersService.onChanged): writes only its own module's rows. */
export type UserChangedListener = (m: EntityManager, change: UserChanged) => Promise<void>;

const facts = (u: User): UserFacts => ({
  username: u.username,
  displayName: u.displayName,
  role: u.role,
  schoolId: u.schoolId,
  phone: u.phone,
  disabled: u.disabled,
});

@Injectable()
export class UsersService implements ActorNames {
  private readonly changeListeners: UserChangedListener[] = [];

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @InjectDataSource() private readonly db: DataSource,
    private readonly tokens: TokenService,
    private readonly audit: AuditService,
  ) {}

  /**
   * How the modules above auth (which it cannot import) hear that a user changed — the roster shows people on duty
   * by name and only while they may hold a duty. Each listener runs inside the change's transaction, after the user
   * and its audit entry are written: what it writes (its own rows, a console event) commits with the change or not at
   * all, and a listener that throws fails the change.
   */
  onChanged(listener: UserChangedListener): void {
    this.changeListeners.push(listener);
  }

  checkPasswordStrength(password: string, field = 'password'): void {
    const min = this.config.auth.minPasswordLength;
    if (password.length < min) throw Errors.validation([{ field, reason: `must have at least ${min} characters` }]);
  }

  private async assertSchoolExists(m: EntityManager, schoolId: string): Promise<void> {
    const [row] = await m.query(`SELECT 1 FROM schools WHERE id = $1`, [schoolId]);
    if (!row) throw Errors.validation([{ field: 'schoolId', reason: 'no such school' }]);
  }

  async list(filter: { role?: string; schoolId?: string; limit: number; offset: number }): Promise<{ items: User[]; total: number }> {
    const qb = this.db.getRepository(User).createQueryBuilder('u').orderBy('u.username').take(filter.limit).skip(filter.offset);
    if (filter.role) qb.andWhere('u.role = :role', { role: filter.role });
    if (filter.schoolId) qb.andWhere('u.school_id = :schoolId', { schoolId: filter.schoolId });
    const [items, total] = await qb.getManyAndCount();
    return { items, total };
  }

  /** The display names (trimmed, non-empty) of these users, by id: how the audit log names its actors (ACTOR_NAMES). */
  async displayNames(userIds: readonly string[]): Promise<Map<string, string>> {
    if (userIds.length === 0) return new Map();
    const rows: { id: string; name: string }[] = await this.db.query(
      `SELECT id, btrim(display_name) AS name FROM users WHERE id = ANY($1::uuid[]) AND btrim(display_name) <> ''`,
      [userIds],
    );
    // Names stored before invisible characters were refused are shown without them (a bidi override reversing the text).
    return new Map(rows.map((r) => [r.id, visibleName(r.name)]).filter(([, n]) => n !== '') as [string, string][]);
  }

  async get(id: string): Promise<User> {
    const u = await this.db.getRepository(User).findOneBy({ id });
    if (!u) throw Errors.notFound(ErrorCode.USER.NOT_FOUND, id);
    return u;
  }

  async create(dto: CreateUserDto, manager?: EntityManager): Promise<User> {
    this.checkPasswordStrength(dto.password);
    if (dto.role !== 'school_security' && dto.schoolId)
      throw Errors.validation([{ field: 'schoolId', reason: 'only school_security users belong to a school' }]);
    const run = async (m: EntityManager) => {
      if (dto.schoolId) await this.assertSchoolExists(m, dto.schoolId);
      const exists = await m.getRepository(User).createQueryBuilder('u').where('lower(u.username) = lower(:n)', { n: dto.username }).getExists();
      if (exists) throw Errors.conflict(ErrorCode.USER.USERNAME_TAKEN, `Username ${dto.username} is taken`);
      const user = m.getRepository(User).create({
        username: dto.username,
        displayName: dto.displayName ?? '',
        passwordHash: await hashPassword(dto.password),
        role: dto.role,
        schoolId: dto.role === 'school_security' ? dto.schoolId! : null,
        phone: dto.phone ?? '',
      });
      await m.save(user);
      await this.audit.record(m, { action: 'create', entity: 'user', entityId: user.id, schoolId: user.schoolId, after: user });
      return user;
    };
    return manager ? run(manager) : this.db.transaction(run);
  }

  async update(id: string, dto: UpdateUserDto): Promise<User> {
    if (dto.password !== undefined) this.checkPasswordStrength(dto.password);
    const user = await this.db.transaction(async (m) => {
      const user = await m.getRepository(User).findOne({ where: { id }, lock: { mode: 'pessimistic_write' } });
      if (!user) throw Errors.notFound(ErrorCode.USER.NOT_FOUND, id);
      const before = { ...user };
      if (dto.displayName !== undefined) user.displayName = dto.displayName;
      if (dto.phone !== undefined) user.phone = dto.phone;
      if (dto.disabled !== undefined) user.disabled = dto.disabled;
      if (dto.role !== undefined) user.role = dto.role;
      if (dto.schoolId !== undefined) user.schoolId = dto.schoolId;
      if (user.role !== 'school_security') user.schoolId = null;
      if (user.role === 'school_security' && !user.schoolId) throw Errors.validation([{ field: 'schoolId', reason: 'required for school_security' }]);
      if (user.schoolId && user.schoolId !== before.schoolId) await this.assertSchoolExists(m, user.schoolId);
      if (before.role === 'admin' && !before.disabled && (user.role !== 'admin' || user.disabled)) await this.assertAnotherAdmin(m, id);
      if (dto.password !== undefined) user.passwordHash = await hashPassword(dto.password);
      await m.save(user);
      await this.audit.record(m, { action: 'update', entity: 'user', entityId: id, schoolId: user.schoolId, before, after: user });
      // Role, scope, password or access changed: tokens that carry the old claims stop working —
      // every access token issued so far and every refresh token (issue 12 §6), with the change.
      if (dto.password !== undefined || dto.disabled || dto.role !== undefined || dto.schoolId !== undefined) {
        // Deleted, not marked spent: a spent token presented again reads as theft (REFRESH_REUSED); these are simply void.
        await m.query(`DELETE FROM refresh_tokens WHERE user_id = $1`, [id]);
        await this.tokens.revokeAllForUser(id, m);
      }
      const change: UserChanged = { userId: id, before: facts(before), after: facts(user) };
      for (const listener of this.changeListeners) await listener(m, change);
      return user;
    });
    return user;
  }

  /**
   * 409 USER.LAST_ADMIN unless an enabled admin other than `id` remains: demoting or disabling the last one left the
   * district with nobody to manage users, and `create-admin` does nothing for an existing username (attack pass 9 #3).
   * Serialised by an advisory lock, so two admins demoting each other at once cannot both pass.
   */
  private async assertAnotherAdmin(m: EntityManager, id: string): Promise<void> {
    await m.query(`SELECT pg_advisory_xact_lock(hashtext('users.last-admin'))`);
    const [{ n }] = (await m.query(`SELECT count(*)::int AS n FROM users WHERE role = 'admin' AND NOT disabled AND id <> $1`, [id])) as { n: number }[];
    if (n === 0)
      throw new DomainError(
        HttpStatus.CONFLICT,
        ErrorCode.USER.LAST_ADMIN,
        'the only enabled admin cannot be demoted or disabled: make another user admin first',
      );
  }

  async changeOwnPassword(id: string, current: string, next: string): Promise<void> {
    this.checkPasswordStrength(next, 'newPassword');
    const user = await this.db.getRepository(User).createQueryBuilder('u').addSelect('u.passwordHash').where('u.id = :id', { id }).getOne();
    if (!user || !(await verifyPassword(user.passwordHash, current))) throw Errors.validation([{ field: 'currentPassword', reason: 'is wrong' }]);
    await this.update(id, { password: next });
  }

  /**
   * The first admin: from configuration at boot (ADMIN_USERNAME / ADMIN_PASSWORD) or the
   * `create-admin` CLI command. Existing users are left alone, so it is safe to repeat.
   */
  async ensureAdmin(username: string, password: string): Promise<'created' | 'exists'> {
    const existing = await this.db.getRepository(User).createQueryBuilder('u').where('lower(u.username) = lower(:n)', { n: username }).getOne();
    if (existing) return 'exists';
    await this.create({ username, password, role: 'admin', displayName: 'Administrator' });
    return 'created';
  }
}
