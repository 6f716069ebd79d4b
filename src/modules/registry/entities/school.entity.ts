import { Column, CreateDateColumn, Entity, PrimaryGeneratedColumn, UpdateDateColumn } from 'typeorm';
import type { SchoolType } from '../registry.constants';

export interface TimeWindow {
  start: string; // HH:mm, Asia/Shanghai
  end: string;
}

/** When the school is in session on a school day; protection-post windows derive from it. */
export interface Timetable {
  /** ISO weekdays (1 = Monday … 7 = Sunday) that are school days. */
  weekdays: number[];
  arrival: TimeWindow;
  dismissal: TimeWindow;
  /** School hours: gates closed, cameras counted for the online rate. */
  schoolHours: TimeWindow;
}

export interface TermCalendar {
  terms: { start: string; end: string }[]; // YYYY-MM-DD inclusive
  holidays: string[]; // YYYY-MM-DD days without school inside a term
}

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
  @Column({ type: 'jsonb' }) timetable: Timetable;
  @Column({ type: 'jsonb', default: () => `'{"terms":[],"holidays":[]}'` }) calendar: TermCalendar;
  @CreateDateColumn({ type: 'timestamptz' }) createdAt: Date;
  @UpdateDateColumn({ type: 'timestamptz' }) updatedAt: Date;
}
