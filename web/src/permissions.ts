import type { Role } from '@/domain';

export type IncidentAction = 'acknowledge' | 'dispatch' | 'on_scene' | 'resolve' | 'note' | 'cancel';

/**
 * Who may do what to an incident — mirrors ACT_ROLES / RAISE_ROLES / CANCEL_ROLES in
 * src/modules/alarms/alarms.access.ts (the server checks every action anyway; this only decides
 * which buttons a role is shown).
 */
const ACTION_ROLES: Record<IncidentAction, readonly Role[]> = {
  acknowledge: ['operator', 'supervisor', 'admin'],
  dispatch: ['operator', 'supervisor', 'admin'],
  on_scene: ['operator', 'supervisor', 'admin'],
  resolve: ['operator', 'supervisor', 'admin'],
  note: ['operator', 'supervisor', 'admin', 'school_security'],
  cancel: ['operator', 'supervisor', 'admin', 'school_security'],
};

export const can = (role: Role, action: IncidentAction): boolean => ACTION_ROLES[action].includes(role);

/** The states an action may start from (src/modules/alarms/incident-state.ts). */
export const ALLOWED_FROM: Record<IncidentAction, readonly string[]> = {
  acknowledge: ['raised'],
  dispatch: ['acknowledged'],
  on_scene: ['acknowledged', 'dispatched'],
  resolve: ['acknowledged', 'dispatched', 'on_scene'],
  note: ['raised', 'acknowledged', 'dispatched', 'on_scene', 'resolved', 'cancelled'],
  cancel: ['raised'],
};

/**
 * GB/T 28181 device panel — mirrors gb28181.controller.ts: commands (reboot, arm / disarm, alarm
 * reset, recording) for operators and admins; the device, its status and its recordings also for
 * supervisors. Other roles are not offered the panel.
 */
export const GB_CONTROL_ROLES: readonly Role[] = ['operator', 'admin'];
export const GB_READ_ROLES: readonly Role[] = ['operator', 'supervisor', 'admin'];
