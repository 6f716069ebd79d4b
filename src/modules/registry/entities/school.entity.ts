import { Column, CreateDateColumn, Entity, PrimaryGeneratedColumn, UpdateDateColumn } from 'typeorm';
import type { TermCalendar, Timetable } from '../../school-day';
import type { SchoolType } from '../registry.constants';

// The shapes are the school-day kernel's (it computes school days and hours from them); stored here.
export type { TermCalendar, TimeWindow, Timetable } from '../../school-day';

@Entity('schools')
export class School {
  @PrimaryGeneratedColumn('uuid') id: string;
  @Column({ type: 'uuid' }) districtId: string;
  @Column({ type: 'uuid', nullable: true }) zoneId: string | null;
  @Column({ type: 'uuid', nullable: true }) groupId: string | null;
  @Column({ type: 'text', unique: true }) code: string;
  @Column({ type: 'text' }) name: string;
  @Column({ type: 'text' }) type: SchoolType;
  @Column({ type: 'text', default: '' }) address: string;
  @Column({ type: 'double precision', nullable: true }) lat: number | null;
  @Column({ type: 'double precision', nullable: true }) lng: number | null;
  @Column({ type: 'integer', default: 0 }) studentCount: number;
  @Column({ type: 'integer', default: 0 }) staffCount: number;
  @Column({ type: 'boolean', default: false }) boarding: boolean;
  /** The school card an operator sees on each alarm (issue 13): who to call, and the police station of the area. */
  @Column({ type: 'text', default: '' }) securityChiefName: string;
  @Column({ type: 'text', default: '' }) securityChiefPhone: string;
  @Column({ type: 'text', default: '' }) principalName: string;
  @Column({ type: 'text', default: '' }) principalPhone: string;
  @Column({ type: 'text', default: '' }) policeStationName: string;
  @Column({ type: 'text', default: '' }) policeStationPhone: string;
  @Column({ type: 'jsonb' }) timetable: Timetable;
  @Column({ type: 'jsonb', default: () => `'{"terms":[],"holidays":[]}'` }) calendar: TermCalendar;
  @CreateDateColumn({ type: 'timestamptz' }) createdAt: Date;
  @UpdateDateColumn({ type: 'timestamptz' }) updatedAt: Date;
}
