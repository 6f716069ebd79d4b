import { Column, CreateDateColumn, Entity, PrimaryGeneratedColumn, UpdateDateColumn } from 'typeorm';
import type { AreaKind, DeviceStatus } from '../registry.constants';

/** 一键报警: a one-click alarm button; `linkedCameraIds` are the cameras that cover its spot. */
@Entity('alarm_devices')
export class AlarmDevice {
  @PrimaryGeneratedColumn('uuid') id: string;
  @Column({ type: 'text', unique: true }) code: string;
  @Column({ type: 'uuid' }) schoolId: string;
  @Column({ type: 'text', default: '' }) location: string;
  @Column({ type: 'text' }) areaKind: AreaKind;
  @Column({ type: 'boolean', default: false }) policeLinked: boolean;
  @Column({ type: 'uuid', array: true, default: () => `'{}'` }) linkedCameraIds: string[];
  @Column({ type: 'text', default: 'unknown' }) status: DeviceStatus;
  @Column({ type: 'timestamptz', nullable: true }) lastSeenAt: Date | null;
  /** The last self-test (issue 11 §3: written by src/modules/alarms button tests, never by registry writes). */
  @Column({ type: 'timestamptz', nullable: true }) lastTestAt: Date | null;
  @Column({ type: 'text', nullable: true }) lastTestByName: string | null;
  /** Presses until then are test presses (a guard's "test mode"). */
  @Column({ type: 'timestamptz', nullable: true }) testModeUntil: Date | null;
  @Column({ type: 'text', nullable: true }) testModeByName: string | null;
  /** The last delivery to the police endpoint that succeeded for this button (real or test press). */
  @Column({ type: 'timestamptz', nullable: true }) lastPoliceRelayAt: Date | null;
  @Column({ type: 'integer', nullable: true }) keepaliveSeconds: number | null;
  @CreateDateColumn({ type: 'timestamptz' }) createdAt: Date;
  @UpdateDateColumn({ type: 'timestamptz' }) updatedAt: Date;
}
