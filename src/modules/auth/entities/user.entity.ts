import { Column, CreateDateColumn, Entity, PrimaryGeneratedColumn, UpdateDateColumn } from 'typeorm';
import type { UserRole } from '../../../infra/access/roles';

@Entity('users')
export class User {
  @PrimaryGeneratedColumn('uuid') id: string;
  @Column({ type: 'text' }) username: string; // unique on lower(username)
  @Column({ type: 'text', default: '' }) displayName: string;
  @Column({ type: 'text', select: false }) passwordHash: string;
  @Column({ type: 'text' }) role: UserRole;
  @Column({ type: 'uuid', nullable: true }) schoolId: string | null;
  @Column({ type: 'text', default: '' }) phone: string;
  @Column({ type: 'boolean', default: false }) disabled: boolean;
  @Column({ type: 'timestamptz', nullable: true }) lastLoginAt: Date | null;
  @CreateDateColumn({ type: 'timestamptz' }) createdAt: Date;
  @UpdateDateColumn({ type: 'timestamptz' }) updatedAt: Date;
}
