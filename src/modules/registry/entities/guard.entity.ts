import { Column, CreateDateColumn, Entity, PrimaryGeneratedColumn, UpdateDateColumn } from 'typeorm';

/** A security guard (保安员) employed at a school. */
@Entity('guards')
export class Guard {
  @PrimaryGeneratedColumn('uuid') id: string;
  @Column({ type: 'uuid' }) schoolId: string;
  @Column({ type: 'text' }) name: string;
  @Column({ type: 'text', unique: true }) licenceNo: string;
  @Column({ type: 'boolean', default: true }) fullTime: boolean;
  @Column({ type: 'text', default: '' }) phone: string;
  @Column({ type: 'boolean', default: true }) active: boolean;
  @CreateDateColumn({ type: 'timestamptz' }) createdAt: Date;
  @UpdateDateColumn({ type: 'timestamptz' }) updatedAt: Date;
}
