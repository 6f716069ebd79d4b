import type { IncidentCamera, IncidentSummary } from '../console-events/console-events.catalogue';
import type { IncidentSource, IncidentStatus, IncidentType, Outcome, Priority } from './alarms.constants';

/** An incident row as Postgres returns it. */
export interface IncidentRow {
  id: string;
  type: IncidentType;
  priority: Priority;
  source: IncidentSource;
  /** null: an unplaced device alarm (GB/T 28181 channel of no known school). */
  school_id: string | null;
  zone_id: string | null;
  alarm_device_id: string | null;
  camera_id: string | null;
  location: string;
  area_kind: string | null;
  note: string;
  status: IncidentStatus;
  press_count: number;
  first_press_at: Date;
  last_press_at: Date;
  drill: boolean;
  /** When a drill was made real (its delivery as real goes under `<incident>-real`); null otherwise (absent in a draft not yet inserted). */
  made_real_at?: Date | null;
  outcome: Outcome | null;
  raised_by_id: string | null;
  raised_by_name: string;
  shown_at: Date | null;
  acknowledged_by_id: string | null;
  acknowledged_by_name: string | null;
  acknowledged_at: Date | null;
  dispatched_at: Date | null;
  on_scene_at: Date | null;
  resolved_by_id: string | null;
  resolved_by_name: string | null;
  resolved_at: Date | null;
  cancelled_at: Date | null;
  cancel_reason: string | null;
  escalation_level: number;
  linked_camera_ids: string[];
  cameras: IncidentCamera[];
  school_name: string;
  relay_required: boolean;
  relay_delivered_at: Date | null;
  relay_attempts: number;
  relay_late: boolean;
  reporter_latitude: number | null;
  reporter_longitude: number | null;
  reporter_accuracy_m: number | null;
  created_at: Date;
  updated_at: Date;
}

export const iso = (d: Date | null) => (d ? new Date(d).toISOString() : null);

export function toSummary(r: IncidentRow): IncidentSummary {
  return {
    incidentId: r.id,
    schoolId: r.school_id,
    schoolName: r.school_name,
    zoneId: r.zone_id,
    type: r.type,
    priority: r.priority,
    source: r.source,
    status: r.status,
    location: r.location,
    areaKind: r.area_kind,
    note: r.note,
    alarmDeviceId: r.alarm_device_id,
    cameraId: r.camera_id,
    pressCount: r.press_count,
    firstPressAt: iso(r.first_press_at)!,
    lastPressAt: iso(r.last_press_at)!,
    drill: r.drill,
    outcome: r.outcome,
    cameras: r.cameras,
    raisedBy: r.raised_by_name,
    raisedById: r.raised_by_id,
    acknowledgedBy: r.acknowledged_at ? { id: r.acknowledged_by_id, name: r.acknowledged_by_name ?? '', at: iso(r.acknowledged_at)! } : null,
    escalationLevel: r.escalation_level,
    relay: { required: r.relay_required, deliveredAt: iso(r.relay_delivered_at), attempts: r.relay_attempts, late: r.relay_late },
    reporterPosition:
      r.reporter_latitude === null || r.reporter_longitude === null || r.reporter_accuracy_m === null
        ? null
        : { latitude: r.reporter_latitude, longitude: r.reporter_longitude, accuracyM: r.reporter_accuracy_m },
  };
}

/** The API view: the console summary plus the remaining timestamps. */
export function toView(r: IncidentRow) {
  return {
    id: r.id,
    ...toSummary(r),
    dispatchedAt: iso(r.dispatched_at),
    onSceneAt: iso(r.on_scene_at),
    resolvedAt: iso(r.resolved_at),
    resolvedBy: r.resolved_by_name,
    cancelledAt: iso(r.cancelled_at),
    cancelReason: r.cancel_reason,
    shownAt: iso(r.shown_at),
    createdAt: iso(r.created_at),
    updatedAt: iso(r.updated_at),
  };
}
export type IncidentView = ReturnType<typeof toView>;
