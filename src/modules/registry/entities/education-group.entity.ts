import { Column, CreateDateColumn, Entity, PrimaryGeneratedColumn, UpdateDateColumn } from 'typeorm';

/** 教育集团: an education group of schools led by a core school. */
@Entity('education_groups')
export class EducationGroup {
  @PrimaryGeneratedColumn('uuid') id: string;
  @Column({ type: 'uuid' }) districtId: string;
  @Column({ type: 'text', unique: true }) code: string;
  @Column({ type: 'text' }) name: string;
  @CreateDateColumn({ type: 'timestamptz' }) createdAt: Date;
  @UpdateDateColumn({ type: 'timestamptz' }) updatedAt: Date;
}
