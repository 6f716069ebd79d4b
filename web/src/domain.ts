import type { components } from '@/shared/api-schema';

/**
 * Value lists of the server's enumerations. Their types come from the OpenAPI document, and
 * `allOf` refuses a list that misses a member, so a value added on the server breaks the web build
 * until it is listed (and labelled in both dictionaries).
 */
type Schemas = components['schemas'];
export type Role = Schemas['CreateUserDto']['role'];
export type Outcome = Schemas['ResolveDto']['outcome'];
export type Priority = NonNullable<Schemas['RaiseIncidentDto']['priority']>;
export type IncidentType = NonNullable<Schemas['DeviceReportDto']['type'] | Schemas['RaiseIncidentDto']['type']>;
/** Not enumerated in the OpenAPI document yet (IncidentQuery.status is a comma-separated string): kept in step with src/modules/alarms/alarms.constants.ts by hand. */
export type IncidentStatus = 'raised' | 'acknowledged' | 'dispatched' | 'on_scene' | 'resolved' | 'cancelled';

function allOf<T extends string>() {
  return <const A extends readonly T[]>(values: A & ([Exclude<T, A[number]>] extends [never] ? unknown : { missing: Exclude<T, A[number]> })): A => values;
}

export const ROLES = allOf<Role>()(['admin', 'operator', 'supervisor', 'school_security', 'auditor']);
export const OUTCOMES = allOf<Outcome>()(['genuine', 'false_alarm', 'drill', 'test']);
export const PRIORITIES = allOf<Priority>()(['P1', 'P2', 'P3', 'P4']);
export const INCIDENT_TYPES = allOf<IncidentType>()(['intrusion', 'violence', 'medical', 'fire', 'video_alarm', 'tamper', 'device_fault', 'other']);
export const STATUSES = allOf<IncidentStatus>()(['raised', 'acknowledged', 'dispatched', 'on_scene', 'resolved', 'cancelled']);
export const OPEN_STATUSES: readonly IncidentStatus[] = ['raised', 'acknowledged', 'dispatched', 'on_scene'];

export const isOneOf = <T extends string>(list: readonly T[], v: unknown): v is T => typeof v === 'string' && (list as readonly string[]).includes(v);
export const isOpen = (status: string): boolean => isOneOf(OPEN_STATUSES, status);
export const PRIORITY_RANK: Record<Priority, number> = { P1: 1, P2: 2, P3: 3, P4: 4 };
