/** Values stored in the database: never rename one without a migration. */
export const SCHOOL_TYPES = ['kindergarten', 'primary', 'middle', 'high', 'vocational', 'nine_year'] as const;
export type SchoolType = (typeof SCHOOL_TYPES)[number];

export const ZONE_LEVELS = ['primary', 'middle', 'mixed'] as const;
export type ZoneLevel = (typeof ZONE_LEVELS)[number];

export const AREA_KINDS = [
  'main_gate',
  'side_gate',
  'gatehouse',
  'perimeter',
  'stairwell',
  'dormitory',
  'canteen',
  'playground',
  'classroom_corridor',
  'teaching_building',
  'parking',
  'other',
] as const;
export type AreaKind = (typeof AREA_KINDS)[number];

export const DEVICE_STATUSES = ['unknown', 'online', 'offline', 'fault'] as const;
export type DeviceStatus = (typeof DEVICE_STATUSES)[number];

export { POST_WINDOW_KINDS, type PostWindowKind } from '../school-day';

/** GB/T 28181 ids are 20 decimal digits (centre code, industry, type, serial). */
export const GB_ID_PATTERN = /^\d{20}$/;
export const HHMM_PATTERN = /^([01]\d|2[0-3]):[0-5]\d$/;
export const CODE_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
