import type { IncidentStatus } from './alarms.constants';
import { ErrorCode } from '../../infra/http/errors';

/**
 * The incident lifecycle as a pure function: raised → acknowledged → dispatched → on_scene →
 * resolved, or cancelled by the school before acknowledgement. Resolution needs a person
 * (emergency alarms latch: no device or timer ever resolves one). Notes and presses change
 * nothing but are refused once the incident is closed (presses then open a new incident).
 */
export type IncidentAction = 'acknowledge' | 'dispatch' | 'on_scene' | 'resolve' | 'cancel' | 'note' | 'press' | 'escalate';
export type ActorKind = 'user' | 'device' | 'system';

const NEXT: Partial<Record<IncidentAction, { from: IncidentStatus[]; to: IncidentStatus | null; people?: boolean }>> = {
  acknowledge: { from: ['raised'], to: 'acknowledged', people: true },
  dispatch: { from: ['acknowledged'], to: 'dispatched', people: true },
  on_scene: { from: ['acknowledged', 'dispatched'], to: 'on_scene', people: true },
  resolve: { from: ['acknowledged', 'dispatched', 'on_scene'], to: 'resolved', people: true },
  cancel: { from: ['raised'], to: 'cancelled', people: true },
  note: { from: ['raised', 'acknowledged', 'dispatched', 'on_scene', 'resolved', 'cancelled'], to: null, people: true },
  press: { from: ['raised', 'acknowledged', 'dispatched', 'on_scene'], to: null },
  escalate: { from: ['raised'], to: null },
};

export type TransitionResult =
  | { ok: true; to: IncidentStatus; changes: boolean }
  | { ok: false; code: (typeof ErrorCode.ALARM)['ALREADY_ACKNOWLEDGED' | 'INVALID_TRANSITION' | 'LATCHED']; message: string };

/** The states from which `action` may start (used in conditional UPDATE … WHERE status = ANY(…)). */
export function allowedFrom(action: IncidentAction): IncidentStatus[] {
  return NEXT[action]?.from ?? [];
}

export function transition(from: IncidentStatus, action: IncidentAction, actor: ActorKind = 'user'): TransitionResult {
  const rule = NEXT[action];
  if (!rule) return { ok: false, code: ErrorCode.ALARM.INVALID_TRANSITION, message: `unknown action ${action}` };
  if (rule.people && actor !== 'user') {
    return action === 'resolve'
      ? { ok: false, code: ErrorCode.ALARM.LATCHED, message: '报警已锁定，只能由值班人员人工解除' }
      : { ok: false, code: ErrorCode.ALARM.INVALID_TRANSITION, message: `${action} must be done by a person` };
  }
  if (!rule.from.includes(from)) {
    if (action === 'acknowledge' && from !== 'cancelled') return { ok: false, code: ErrorCode.ALARM.ALREADY_ACKNOWLEDGED, message: '该报警已被其他人员确认' };
    return { ok: false, code: ErrorCode.ALARM.INVALID_TRANSITION, message: `不能在状态 ${from} 下执行 ${action}` };
  }
  return { ok: true, to: rule.to ?? from, changes: rule.to !== null && rule.to !== from };
}
