import { Inject, Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { DataSource } from 'typeorm';
import { APP_CONFIG, AppConfig } from '../../config/config';
import { ErrorCode, Errors } from '../../infra/http/errors';
import { AuditService } from '../audit-log';
import { CreateDeviceCredentialDto } from './dto';
import { DeviceCredential } from './entities/device-credential.entity';
import type { AuthDevice } from '../../infra/access/roles';
import { turnBatch } from '../../infra/database/turn-batch';
import { sha256 } from './token.service';

interface Cached {
  device: AuthDevice;
  secretHash: Buffer;
  until: number;
}

/**
 * What an unknown key id's secret is compared with: the same constant-time comparison as a known
 * one's, so neither the answer nor its timing tells whether the key id exists.
 */
const DUMMY_HASH = randomBytes(32);
/** One answer for every wrong credential (unknown, revoked, wrong secret): no existence oracle. */
const invalid = () => Errors.unauthorized(ErrorCode.AUTH.DEVICE_CREDENTIALS_INVALID, 'Invalid device credential');

interface CredentialRow {
  id: string;
  keyId: string;
  kind: AuthDevice['kind'];
  subjectId: string | null;
  schoolId: string | null;
  secretHash: string;
}

const SUBJECT_TABLE = { camera: 'cameras', alarm_device: 'alarm_devices' } as const;

/**
 * Device credentials: `Authorization: Device <keyId>:<secret>`. Secrets are random 256-bit
 * values, so a SHA-256 hash suffices (no slow KDF on the heartbeat hot path); verified
 * credentials are cached in memory for `auth.deviceCredentialCacheSeconds`, which bounds how
 * long a revoked credential may still be accepted by another api process.
 */
@Injectable()
export class DeviceCredentialsService {
  /** Live credentials looked up (their number is bounded by the credentials that exist, not by what callers send). */
  private readonly cache = new Map<string, Cached>();
  /**
   * Key ids no live credential has → until when that is believed: a map of its own, bounded
   * (auth.deviceCredentialNegativeCacheMax, least recently seen dropped first), so a flood of
   * made-up key ids never evicts a known credential (they shared one map, cleared whole when full).
   */
  private readonly unknown = new Map<string, number>();
  /** Key ids to look up, read together once per event-loop turn (a burst of devices: one query, not one each). */

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @InjectDataSource() private readonly db: DataSource,
    private readonly audit: AuditService,
  ) {}

  async create(dto: CreateDeviceCredentialDto): Promise<{ id: string; keyId: string; secret: string; authorization: string }> {
    if (dto.kind === 'gateway' && dto.subjectId) throw Errors.validation([{ field: 'subjectId', reason: 'a gateway credential has no subject' }]);
    return this.db.transaction(async (m) => {
      let schoolId = dto.schoolId ?? null;
      if (dto.kind !== 'gateway') {
        const [row] = await m.query(`SELECT school_id FROM ${SUBJECT_TABLE[dto.kind]} WHERE id = $1`, [dto.subjectId]);
        if (!row) throw Errors.validation([{ field: 'subjectId', reason: `no such ${dto.kind.replace('_', ' ')}` }]);
        schoolId = row.school_id;
      } else if (schoolId) {
        const [row] = await m.query(`SELECT 1 FROM schools WHERE id = $1`, [schoolId]);
        if (!row) throw Errors.validation([{ field: 'schoolId', reason: 'no such school' }]);
      }
      const keyId = `dk_${randomBytes(9).toString('base64url')}`;
      const secret = randomBytes(32).toString('base64url');
      const cred = m.getRepository(DeviceCredential).create({
        keyId,
        secretHash: sha256(secret),
        kind: dto.kind,
        subjectId: dto.subjectId ?? null,
        schoolId,
        label: dto.label ?? '',
      });
      await m.save(cred);
      this.unknown.delete(keyId); // never a negative entry for a key id just made (another process: key ids are random, none was tried)
      await this.audit.record(m, { action: 'create', entity: 'device_credential', entityId: cred.id, schoolId, after: cred });
      return { id: cred.id, keyId, secret, authorization: `Device ${keyId}:${secret}` };
    });
  }

  async list(filter: { subjectId?: string; schoolId?: string }): Promise<DeviceCredential[]> {
    const qb = this.db.getRepository(DeviceCredential).createQueryBuilder('c').orderBy('c.created_at', 'DESC').limit(1000);
    if (filter.subjectId) qb.andWhere('c.subject_id = :s', { s: filter.subjectId });
    if (filter.schoolId) qb.andWhere('c.school_id = :sc', { sc: filter.schoolId });
    return qb.getMany();
  }

  async revoke(id: string): Promise<void> {
    await this.db.transaction(async (m) => {
      const cred = await m.findOneBy(DeviceCredential, { id });
      if (!cred) throw Errors.notFound(ErrorCode.DEVICE_CREDENTIAL.NOT_FOUND, id);
      if (cred.revokedAt) return;
      await m.update(DeviceCredential, { id }, { revokedAt: new Date() });
      await this.audit.record(m, { action: 'revoke', entity: 'device_credential', entityId: id, schoolId: cred.schoolId, before: cred });
      this.cache.delete(cred.keyId);
    });
  }

  /**
   * Parses and verifies an Authorization header value; throws 401 on anything wrong. The scheme
   * name is case-insensitive (RFC 9110 §11.1): firmware sending `device` or `DEVICE` got a 401,
   * which devices do not retry — the alarm was lost (attack pass 1). Key and secret stay exact.
   */
  async verify(header: string | undefined): Promise<AuthDevice> {
    const m = header ? /^Device\s+([A-Za-z0-9_-]{1,64}):([A-Za-z0-9_-]{1,128})$/i.exec(header.trim()) : null;
    if (!m) throw Errors.unauthorized(ErrorCode.AUTH.DEVICE_CREDENTIALS_REQUIRED, 'Device credentials required: Authorization: Device <keyId>:<secret>');
    const [, keyId, secret] = m;
    const now = Date.now();
    let entry: Cached | null = this.cache.get(keyId) ?? null;
    if (entry && entry.until < now) entry = null;
    const unknown = !entry && (this.unknown.get(keyId) ?? 0) >= now;
    if (unknown) this.touchUnknown(keyId, this.unknown.get(keyId)!);
    if (!entry && !unknown) {
      // Unknown key ids are cached too (same expiry): otherwise an unknown one cost a query every time and a known one
      // none — a timing oracle. Key ids are random (create): a key id tried before it existed is not a real case.
      const cred = await this.lookup(keyId);
      const until = now + this.config.auth.deviceCredentialCacheSeconds * 1000;
      if (cred) {
        entry = {
          device: { credentialId: cred.id, keyId, kind: cred.kind, subjectId: cred.subjectId, schoolId: cred.schoolId },
          secretHash: Buffer.from(cred.secretHash, 'hex'),
          until,
        };
        if (this.cache.size > 200_000) this.cache.clear(); // more live credentials than that: not a district's
        this.cache.set(keyId, entry);
        this.unknown.delete(keyId);
      } else {
        this.cache.delete(keyId); // revoked since it was cached
        this.touchUnknown(keyId, until);
      }
    }
    const given = Buffer.from(sha256(secret), 'hex');
    // Compared in constant time whether the key id exists or not (DUMMY_HASH); one answer for both.
    const equal = timingSafeEqual(given, entry ? entry.secretHash : DUMMY_HASH);
    if (!equal || !entry) throw invalid();
    return entry.device;
  }

  /** Remembers an unknown key id as the most recently seen; the least recently seen go past the bound. */
  private touchUnknown(keyId: string, until: number): void {
    const max = this.config.auth.deviceCredentialNegativeCacheMax;
    this.unknown.delete(keyId);
    if (max <= 0) return;
    while (this.unknown.size >= max) this.unknown.delete(this.unknown.keys().next().value!);
    this.unknown.set(keyId, until);
  }

  /** A live (not revoked) credential by key id, or null; the lookups of one event-loop turn share one query. */
  private readonly lookup = turnBatch<string, CredentialRow | null>(
    async (keyIds) => {
      const rows: CredentialRow[] = await this.db.query(
        `SELECT id, key_id AS "keyId", kind, subject_id AS "subjectId", school_id AS "schoolId", secret_hash AS "secretHash"
         FROM device_credentials WHERE key_id = ANY($1::text[]) AND revoked_at IS NULL`,
        [keyIds],
      );
      return new Map(rows.map((r) => [r.keyId, r]));
    },
    () => null,
  );
}
