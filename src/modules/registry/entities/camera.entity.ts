import { Column, CreateDateColumn, Entity, PrimaryGeneratedColumn, UpdateDateColumn } from 'typeorm';
import type { AreaKind, DeviceStatus } from '../registry.constants';

/** A camera channel, identified as in GB/T 28181 by device id + channel id (20 digits each). */
@Entity('cameras')
export class Camera {
  @PrimaryGeneratedColumn('uuid') id: string;
  @Column({ type: 'uuid' }) schoolId: string;
  @Column({ type: 'char', length: 20 }) deviceId: string;
  @Column({ type: 'char', length: 20 }) channelId: string;
  @Column({ type: 'text' }) name: string;
  @Column({ type: 'text', default: '' }) location: string;
  @Column({ type: 'text' }) areaKind: AreaKind;
  @Column({ type: 'text', default: 'unknown' }) status: DeviceStatus;
  @Column({ type: 'timestamptz', nullable: true }) lastSeenAt: Date | null;
  @Column({ type: 'text', default: '' }) vendor: string;
  @Column({ type: 'text', default: '' }) model: string;
  @Column({ type: 'text', default: '' }) streamUrl: string;
  /** Per-device keepalive interval override (seconds); null = the configured default. */
  @Column({ type: 'integer', nullable: true }) keepaliveSeconds: number | null;
  @CreateDateColumn({ type: 'timestamptz' }) createdAt: Date;
  @UpdateDateColumn({ type: 'timestamptz' }) updatedAt: Date;
}
