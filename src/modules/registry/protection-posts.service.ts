import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
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

  /** One post with its secret QR token (patrols sign the post's QR codes with it; never sent to a client). */
  async post(id: string): Promise<ProtectionPost> {
    const p = await this.db.getRepository(ProtectionPost).findOneBy({ id });
    if (!p) throw Errors.notFound(ErrorCode.PROTECTION_POST.NOT_FOUND, id);
    return p;
  }
}
