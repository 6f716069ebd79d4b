import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { Errors } from '../../infra/http/errors';
import { AlarmDevice } from './entities/alarm-device.entity';
import { Camera } from './entities/camera.entity';
import { School } from './entities/school.entity';

/**
 * What other capabilities may read from the registry. They go through here, never through
 * the registry's tables, so the registry can change its storage without breaking them.
 */
@Injectable()
export class RegistryService {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  async school(id: string): Promise<School> {
    const s = await this.db.getRepository(School).findOneBy({ id });
    if (!s) throw Errors.notFound('school', id);
    return s;
  }

  schools(ids?: string[]): Promise<School[]> {
    return ids ? this.db.getRepository(School).createQueryBuilder('s').where('s.id = ANY(:ids)', { ids }).getMany() : this.db.getRepository(School).find({ order: { code: 'ASC' } });
  }

  cameras(filter: { schoolId?: string; ids?: string[]; areaKinds?: string[] }): Promise<Camera[]> {
    const qb = this.db.getRepository(Camera).createQueryBuilder('c').orderBy('c.name');
    if (filter.schoolId) qb.andWhere('c.school_id = :s', { s: filter.schoolId });
    if (filter.ids) qb.andWhere('c.id = ANY(:ids)', { ids: filter.ids });
    if (filter.areaKinds) qb.andWhere('c.area_kind = ANY(:k)', { k: filter.areaKinds });
    return qb.getMany();
  }

  async alarmDevice(id: string): Promise<AlarmDevice> {
    const d = await this.db.getRepository(AlarmDevice).findOneBy({ id });
    if (!d) throw Errors.notFound('alarm_device', id);
    return d;
  }
}
