import { Column, CreateDateColumn, Entity, PrimaryGeneratedColumn, UpdateDateColumn } from 'typeorm';
import type { ZoneLevel } from '../registry.constants';

/** 学区: a school zone (e.g. a middle-school or primary-school zone of the district). */
@Entity('school_zones')
export class Zone {
  @PrimaryGeneratedColumn('uuid') id: string;
  @Column({ type: 'uuid' }) districtId: string;
  @Column({ type: 'text', unique: true }) code: string;
  @Column({ type: 'text' }) name: string;
  @Column({ type: 'text' }) level: ZoneLevel;
  @CreateDateColumn({ type: 'timestamptz' }) createdAt: Date;
  @UpdateDateColumn({ type: 'timestamptz' }) updatedAt: Date;
}
