/**
 * Required full-time guards (专职保安员) per school: the single source of the staffing rule
 * (audits, compliance and the demo seed all use it). Pure; the rule in force is config
 * `patrols.staffingRule`.
 *
 * - `gongzhi2015` (公治〔2015〕168号, default): fewer than 100 people (students + staff) ≥ 1;
 *   100–1000 ≥ 2; above 1000 one more per additional (started) 500.
 * - `gbt29315` (GB/T 29315-2022): as above, but at least 3 once the school has ≥ 1000 students.
 */
// The rule names are declared with the config key that selects one (patrols.staffingRule): src/config
// is the single source of the list (it imports no module); the kernel re-exports it.
import type { StaffingRule } from '../../config/sections';

export { STAFFING_RULES, type StaffingRule } from '../../config/sections';

/**
 * Guards required for a school of `people` (students + staff) under `rule`; `students` (default:
 * all people) is what GB/T 29315's ≥ 1000 threshold counts.
 */
export function requiredGuards(people: number, rule: StaffingRule = 'gongzhi2015', students = people): number {
  const base = people < 100 ? 1 : people <= 1000 ? 2 : 2 + Math.ceil((people - 1000) / 500);
  return rule === 'gbt29315' && students >= 1000 ? Math.max(3, base) : base;
}

/** Guards required for a school: its students + staff under `rule` (the GB/T 29315 threshold counts students). */
export function requiredGuardsFor(school: { studentCount: number; staffCount: number }, rule: StaffingRule): number {
  return requiredGuards(school.studentCount + school.staffCount, rule, school.studentCount);
}
