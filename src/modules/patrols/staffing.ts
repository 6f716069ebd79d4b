// The rule names are declared with the config key that selects one (patrols.staffingRule).
import type { StaffingRule } from '../../config/sections';

/**
 * Required full-time guards per school: the single source of the staffing rule (the demo seed
 * imports it too). Pure; the rule in force is config `patrols.staffingRule`.
 *
 * - `gongzhi2015` (公治〔2015〕168号, default): fewer than 100 people (students + staff) ≥ 1;
 *   100–1000 ≥ 2; above 1000 one more per additional (started) 500.
 * - `gbt29315` (GB/T 29315-2022): as above, but at least 3 once the school has ≥ 1000 students.
 */
export function requiredGuards(people: number, rule: StaffingRule = 'gongzhi2015', students = people): number {
  const base = people < 100 ? 1 : people <= 1000 ? 2 : 2 + Math.ceil((people - 1000) / 500);
  return rule === 'gbt29315' && students >= 1000 ? Math.max(3, base) : base;
}
