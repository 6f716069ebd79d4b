import type { IncidentType, Priority } from './alarms.constants';

/**
 * How a device's own priority meets its type's default:
 * - `type`: never less urgent than the type's default (attack A6: a fire reported as P4 skipped the
 *   police relay and escalated after 15 min). A device's alarm is never refused for it (a 4xx is an
 *   alarm lost, A1): it is raised at the type's default, said in the note when the device itself
 *   gave the lower priority. More urgent is kept.
 * - `none`: as the device reported it (GB/T 28181 alarms — see GbAlarms).
 */
export type DevicePriorityFloor = 'type' | 'none';

/**
 * The priority a device's alarm is raised at: the one place every device intake path decides it
 * (HTTP device reports, button presses, GB/T 28181 alarms placed or not) — AlarmIntakeService.
 * `reported`: the device's own (undefined: `fallback`, else the type's default). Returns the
 * priority and what to say in the note (null: nothing lowered). 'P1' < 'P4' as text.
 */
export function devicePriority(
  byType: Record<IncidentType, Priority>,
  type: IncidentType,
  reported: Priority | undefined,
  o: { floor: DevicePriorityFloor; fallback?: Priority },
): { priority: Priority; said: string | null } {
  const typePriority = byType[type];
  const asked = reported ?? o.fallback ?? typePriority;
  if (o.floor === 'none' || asked <= typePriority) return { priority: asked, said: null };
  return { priority: typePriority, said: reported !== undefined ? `priority ${reported} 低于该类型默认的 ${typePriority}，按 ${typePriority} 处理` : null };
}
