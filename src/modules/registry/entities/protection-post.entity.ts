import { Column, CreateDateColumn, Entity, PrimaryGeneratedColumn, UpdateDateColumn } from 'typeorm';
import type { PostWindow } from '../../school-day';

export type { PostWindow } from '../../school-day';

/**
 * 护学岗: a school-protection post at a gate. `windows` names which of the school's timetable
 * windows must be staffed; times come from the school's timetable unless overridden here.
 */
@Entity('protection_posts')
export class ProtectionPost {
  @PrimaryGeneratedColumn('uuid') id: string;
  @Column({ type: 'text', unique: true }) code: string;
  @Column({ type: 'uuid' }) schoolId: string;
  @Column({ type: 'text' }) gate: string;
  @Column({ type: 'jsonb' }) windows: PostWindow[];
  @Column({ type: 'integer', default: 2 }) requiredHeadcount: number;
  /** Printed as a QR code at the post; guards scan it to check in. */
  @Column({ type: 'text', unique: true }) qrToken: string;
  /** The camera that sees the post's gate (same school): a check-in gets its picture of the moment. */
  @Column({ type: 'uuid', nullable: true }) gateCameraId: string | null;
  @CreateDateColumn({ type: 'timestamptz' }) createdAt: Date;
  @UpdateDateColumn({ type: 'timestamptz' }) updatedAt: Date;
}
