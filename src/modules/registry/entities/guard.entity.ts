import { Column, CreateDateColumn, Entity, PrimaryGeneratedColumn, UpdateDateColumn } from 'typeorm';

/**
 * A security guard (保安员) employed at a school. School staff declare their guards (create,
 * import); only guards the bureau has verified count for the full-time-guards target (attack F8e:
 * a school imported invented full-time guards to pass it). A school's change to who the guard is
 * or how they count (school, name, licence, full time, active) makes them declared again.
 */
@Entity('guards')
export class Guard {
  @PrimaryGeneratedColumn('uuid') id: string;
  @Column({ type: 'uuid' }) schoolId: string;
  @Column({ type: 'text' }) name: string;
  @Column({ type: 'text', unique: true }) licenceNo: string;
  @Column({ type: 'boolean', default: true }) fullTime: boolean;
  @Column({ type: 'text', default: '' }) phone: string;
  @Column({ type: 'boolean', default: true }) active: boolean;
  /** When the bureau verified the guard (null: declared by the school, not counted yet). */
  @Column({ type: 'timestamptz', nullable: true }) verifiedAt: Date | null;
  /** Who verified them (the bureau user's shown name). */
  @Column({ type: 'text', nullable: true }) verifiedByName: string | null;
  @CreateDateColumn({ type: 'timestamptz' }) createdAt: Date;
  @UpdateDateColumn({ type: 'timestamptz' }) updatedAt: Date;
}
