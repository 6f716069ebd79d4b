import { EntityManager } from 'typeorm';
import type { FieldError } from '../../infra/http/errors';
import * as dto from './dto';
import { AlarmDevice } from './entities/alarm-device.entity';
import { Camera } from './entities/camera.entity';
import { District } from './entities/district.entity';
import { EducationGroup } from './entities/education-group.entity';
import { ProtectionPost } from './entities/protection-post.entity';
import { School } from './entities/school.entity';
import { Guard } from './entities/guard.entity';
import { Zone } from './entities/zone.entity';
import type { AuthUser } from '../../infra/access/roles';
import { shownName } from '../../infra/access/roles';
import { ALL_ROLES, BUREAU_WRITE, CENTER_WRITE, newQrToken, ResourceDef, SCHOOL_WRITE, schoolOwnedFilters, where } from './resource';

const windowOrder = (label: string, w: { start?: string; end?: string } | undefined): FieldError[] =>
  w?.start && w.end && w.start >= w.end ? [{ field: label, reason: 'start must be before end' }] : [];

/** What makes a guard count for the full-time-guards target: a school's change to any of these needs the bureau's verification again. */
const GUARD_COUNTED: (keyof Guard)[] = ['schoolId', 'name', 'licenceNo', 'fullTime', 'active'];

/**
 * Attack F8e (school staff imported invented full-time guards to meet the target): what the
 * bureau writes is verified by that write; what school staff create or import is declared
 * (verified_at null) until the bureau verifies it (POST /guards/{id}/verify), and a school's
 * change to a counted field makes a verified guard declared again. Only verified guards count
 * (RegistryService.fullTimeGuardCounts).
 */
export function stampGuardVerification(g: Guard, before: Guard | null, user: AuthUser | undefined): void {
  if (!user || BUREAU_WRITE.includes(user.role)) {
    const changed = !before || !before.verifiedAt || GUARD_COUNTED.some((k) => before[k] !== g[k]);
    if (changed) Object.assign(g, { verifiedAt: new Date(), verifiedByName: user ? shownName(user) : '' });
    return;
  }
  if (!before || GUARD_COUNTED.some((k) => before[k] !== g[k])) Object.assign(g, { verifiedAt: null, verifiedByName: null });
  else Object.assign(g, { verifiedAt: before.verifiedAt, verifiedByName: before.verifiedByName });
}

export const DISTRICTS: ResourceDef<District> = {
  path: 'districts',
  name: 'district',
  entity: District,
  table: 'districts',
  createDto: dto.CreateDistrictDto,
  updateDto: dto.UpdateDistrictDto,
  queryDto: dto.DistrictQuery,
  school: 'none',
  readRoles: ALL_ROLES,
  writeRoles: CENTER_WRITE,
  filters: {},
  sortable: ['name', 'code', 'createdAt'],
  defaultSort: 'code',
  search: [],
  refs: {},
  view: ['id', 'code', 'name', 'timezone', 'createdAt', 'updatedAt'],
  naturalKey: ['code'],
};

export const ZONES: ResourceDef<Zone> = {
  path: 'zones',
  name: 'zone',
  entity: Zone,
  table: 'school_zones',
  createDto: dto.CreateZoneDto,
  updateDto: dto.UpdateZoneDto,
  queryDto: dto.ZoneQuery,
  school: 'none',
  readRoles: ALL_ROLES,
  writeRoles: CENTER_WRITE,
  filters: { level: where.eq('level', 'level') },
  sortable: ['name', 'code', 'level', 'createdAt'],
  defaultSort: 'code',
  search: ['name', 'code'],
  refs: { districtId: 'districts' },
  view: ['id', 'districtId', 'code', 'name', 'level', 'createdAt', 'updatedAt'],
  naturalKey: ['code'],
};

export const GROUPS: ResourceDef<EducationGroup> = {
  path: 'groups',
  name: 'group',
  entity: EducationGroup,
  table: 'education_groups',
  createDto: dto.CreateGroupDto,
  updateDto: dto.UpdateGroupDto,
  queryDto: dto.GroupQuery,
  school: 'none',
  readRoles: ALL_ROLES,
  writeRoles: CENTER_WRITE,
  filters: {},
  sortable: ['name', 'code', 'createdAt'],
  defaultSort: 'code',
  search: ['name', 'code'],
  refs: { districtId: 'districts' },
  view: ['id', 'districtId', 'code', 'name', 'createdAt', 'updatedAt'],
  naturalKey: ['code'],
};

export const SCHOOLS: ResourceDef<School> = {
  path: 'schools',
  name: 'school',
  entity: School,
  table: 'schools',
  createDto: dto.CreateSchoolDto,
  updateDto: dto.UpdateSchoolDto,
  queryDto: dto.SchoolQuery,
  school: 'self',
  readRoles: ALL_ROLES,
  writeRoles: CENTER_WRITE,
  filters: {
    zoneId: where.eq('zone_id', 'zoneId'),
    groupId: where.eq('group_id', 'groupId'),
    type: where.eq('type', 'type'),
    boarding: where.eq('boarding', 'boarding'),
  },
  sortable: ['name', 'code', 'type', 'studentCount', 'staffCount', 'createdAt'],
  defaultSort: 'code',
  search: ['name', 'code', 'address'],
  refs: { districtId: 'districts', zoneId: 'school_zones', groupId: 'education_groups' },
  view: [
    'id',
    'districtId',
    'zoneId',
    'groupId',
    'code',
    'name',
    'type',
    'address',
    'lat',
    'lng',
    'studentCount',
    'staffCount',
    'boarding',
    'securityChiefName',
    'securityChiefPhone',
    'principalName',
    'principalPhone',
    'policeStationName',
    'policeStationPhone',
    'timetable',
    'calendar',
    'createdAt',
    'updatedAt',
  ],
  naturalKey: ['code'],
  prepare: async (_m, s) => {
    const t = s.timetable;
    const problems = [
      ...windowOrder('timetable.arrival', t?.arrival),
      ...windowOrder('timetable.dismissal', t?.dismissal),
      ...windowOrder('timetable.schoolHours', t?.schoolHours),
    ];
    s.calendar?.terms?.forEach((term, i) => {
      if (term.start > term.end) problems.push({ field: `calendar.terms.${i}`, reason: 'start must not be after end' });
    });
    if ((s.lat === null || s.lat === undefined) !== (s.lng === null || s.lng === undefined)) problems.push({ field: 'lat', reason: 'lat and lng go together' });
    return problems;
  },
};

export const CAMERAS: ResourceDef<Camera> = {
  path: 'cameras',
  name: 'camera',
  entity: Camera,
  table: 'cameras',
  createDto: dto.CreateCameraDto,
  updateDto: dto.UpdateCameraDto,
  queryDto: dto.CameraQuery,
  school: 'column',
  readRoles: ALL_ROLES,
  writeRoles: CENTER_WRITE,
  filters: {
    ...schoolOwnedFilters(),
    status: where.eq('status', 'status'),
    areaKind: where.eq('area_kind', 'areaKind'),
    deviceId: where.eq('device_id', 'deviceId'),
  },
  sortable: ['name', 'deviceId', 'channelId', 'areaKind', 'status', 'lastSeenAt', 'createdAt'],
  defaultSort: 'deviceId,channelId',
  search: ['name', 'location', 'channel_id'],
  refs: { schoolId: 'schools' },
  view: [
    'id',
    'schoolId',
    'deviceId',
    'channelId',
    'name',
    'location',
    'areaKind',
    'status',
    'lastSeenAt',
    'vendor',
    'model',
    'streamUrl',
    'keepaliveSeconds',
    'createdAt',
    'updatedAt',
  ],
  naturalKey: ['deviceId', 'channelId'],
};

export const ALARM_DEVICES: ResourceDef<AlarmDevice> = {
  path: 'alarm-devices',
  name: 'alarm_device',
  entity: AlarmDevice,
  table: 'alarm_devices',
  createDto: dto.CreateAlarmDeviceDto,
  updateDto: dto.UpdateAlarmDeviceDto,
  queryDto: dto.AlarmDeviceQuery,
  school: 'column',
  readRoles: ALL_ROLES,
  writeRoles: CENTER_WRITE,
  filters: {
    ...schoolOwnedFilters(),
    status: where.eq('status', 'status'),
    areaKind: where.eq('area_kind', 'areaKind'),
    policeLinked: where.eq('police_linked', 'policeLinked'),
  },
  sortable: ['code', 'areaKind', 'status', 'lastSeenAt', 'lastTestAt', 'createdAt'],
  defaultSort: 'code',
  search: ['code', 'location'],
  refs: { schoolId: 'schools' },
  view: [
    'id',
    'code',
    'schoolId',
    'location',
    'areaKind',
    'policeLinked',
    'linkedCameraIds',
    'status',
    'lastSeenAt',
    'lastTestAt',
    'lastTestByName',
    'testModeUntil',
    'lastPoliceRelayAt',
    'keepaliveSeconds',
    'createdAt',
    'updatedAt',
  ],
  naturalKey: ['code'],
  prepare: async (m: EntityManager, d) => {
    const ids = d.linkedCameraIds ?? [];
    if (ids.length === 0) return [];
    const rows: { id: string }[] = await m.query(`SELECT id FROM cameras WHERE id = ANY($1) AND school_id = $2`, [ids, d.schoolId]);
    const found = new Set(rows.map((r) => r.id));
    const missing = ids.filter((id) => !found.has(id));
    return missing.length ? [{ field: 'linkedCameraIds', reason: `not cameras of this school: ${missing.join(', ')}` }] : [];
  },
};

export const GUARDS: ResourceDef<Guard> = {
  path: 'guards',
  name: 'guard',
  entity: Guard,
  table: 'guards',
  createDto: dto.CreateGuardDto,
  updateDto: dto.UpdateGuardDto,
  queryDto: dto.GuardQuery,
  school: 'column',
  readRoles: ALL_ROLES,
  writeRoles: SCHOOL_WRITE,
  filters: {
    ...schoolOwnedFilters(),
    fullTime: where.eq('full_time', 'fullTime'),
    active: where.eq('active', 'active'),
    verified: (v) => ({ sql: v === true ? 'e.verified_at IS NOT NULL' : 'e.verified_at IS NULL' }),
  },
  sortable: ['name', 'licenceNo', 'createdAt'],
  defaultSort: 'name',
  search: ['name', 'licence_no', 'phone'],
  refs: { schoolId: 'schools' },
  view: ['id', 'schoolId', 'name', 'licenceNo', 'fullTime', 'phone', 'active', 'verifiedAt', 'verifiedByName', 'createdAt', 'updatedAt'],
  naturalKey: ['licenceNo'],
  stamp: stampGuardVerification,
};

export const PROTECTION_POSTS: ResourceDef<ProtectionPost> = {
  path: 'protection-posts',
  name: 'protection_post',
  entity: ProtectionPost,
  table: 'protection_posts',
  createDto: dto.CreateProtectionPostDto,
  updateDto: dto.UpdateProtectionPostDto,
  queryDto: dto.ProtectionPostQuery,
  school: 'column',
  readRoles: ALL_ROLES,
  // A post's windows and head count are what the 护学岗 audit checks: set by the bureau only; school staff read them (403 on writes, attack F8d).
  writeRoles: BUREAU_WRITE,
  filters: schoolOwnedFilters(),
  sortable: ['code', 'gate', 'requiredHeadcount', 'createdAt'],
  defaultSort: 'code',
  search: ['code', 'gate'],
  refs: { schoolId: 'schools', gateCameraId: 'cameras' },
  // Never the QR token (attack F8b: a guard who read it checked in from anywhere): the bureau prints signed, rotating codes (GET /protection-posts/{id}/qr).
  view: ['id', 'code', 'schoolId', 'gate', 'windows', 'requiredHeadcount', 'gateCameraId', 'createdAt', 'updatedAt'],
  naturalKey: ['code'],
  prepare: async (m, p) => {
    p.qrToken ||= newQrToken();
    const errors = (p.windows ?? []).flatMap((w, i) => windowOrder(`windows.${i}`, w));
    if (p.gateCameraId) {
      const [cam]: { school_id: string }[] = await m.query(`SELECT school_id FROM cameras WHERE id = $1`, [p.gateCameraId]);
      if (cam && cam.school_id !== p.schoolId) errors.push({ field: 'gateCameraId', reason: "must be a camera of the post's school" });
    }
    return errors;
  },
};

export const RESOURCES = [DISTRICTS, ZONES, GROUPS, SCHOOLS, CAMERAS, ALARM_DEVICES, GUARDS, PROTECTION_POSTS] as unknown as ResourceDef[];
