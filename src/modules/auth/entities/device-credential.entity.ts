import { Column, CreateDateColumn, Entity, PrimaryGeneratedColumn } from 'typeorm';
import type { DeviceKind } from '../../../infra/access/roles';

/** A device's own credential (never a user's): key id in clear, secret stored as SHA-256. */
@Entity('device_credentials')
export class DeviceCredential {
  @PrimaryGeneratedColumn('uuid') id: string;
  @Column({ type: 'text', unique: true }) keyId: string;
  @Column({ type: 'text', select: false }) secretHash: string;
  @Column({ type: 'text' }) kind: DeviceKind;
  @Column({ type: 'uuid', nullable: true }) subjectId: string | null;
  @Column({ type: 'uuid', nullable: true }) schoolId: string | null;
  @Column({ type: 'text', default: '' }) label: string;
  @Column({ type: 'timestamptz', nullable: true }) revokedAt: Date | null;
  @CreateDateColumn({ type: 'timestamptz' }) createdAt: Date;
}
