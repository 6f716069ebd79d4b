import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, EntityManager } from 'typeorm';
import { returningRows } from '../../infra/database/returning';
import { newQrToken } from './resource';
import { ErrorCode, Errors } from '../../infra/http/errors';
import { ProtectionPost } from './entities/protection-post.entity';

/** School-protection posts (护学岗) as patrols and compliance read them. */
@Injectable()
export class ProtectionPostsService {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  /** Protection posts of some schools (all when omitted). */
  posts(schoolIds?: string[]): Promise<ProtectionPost[]> {
    return this.db.query(
      `SELECT id, code, school_id AS "schoolId", gate, windows, required_headcount AS "requiredHeadcount", qr_token AS "qrToken", created_at AS "createdAt", updated_at AS "updatedAt"
         FROM protection_posts WHERE ($1::uuid[] IS NULL OR school_id = ANY($1)) ORDER BY code`,
      [schoolIds ?? null],
    );
  }

  /**
   * A new secret token for the post (in the caller's transaction): every QR code printed for it so
   * far stops working (a lost or photographed sheet, attack F8b). 404 for an unknown post.
   */
  async rotateQrToken(m: EntityManager, id: string): Promise<ProtectionPost> {
    const [row] = returningRows<{ id: string }>(
      await m.query(`UPDATE protection_posts SET qr_token = $2, updated_at = now() WHERE id = $1 RETURNING id`, [id, newQrToken()]),
    );
    if (!row) throw Errors.notFound(ErrorCode.PROTECTION_POST.NOT_FOUND, id);
    return (await m.getRepository(ProtectionPost).findOneBy({ id }))!;
  }

  /** One post with its secret QR token (patrols sign the post's QR codes with it; never sent to a client). */
  async post(id: string): Promise<ProtectionPost> {
    const p = await this.db.getRepository(ProtectionPost).findOneBy({ id });
    if (!p) throw Errors.notFound(ErrorCode.PROTECTION_POST.NOT_FOUND, id);
    return p;
  }
}
