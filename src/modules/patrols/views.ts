import type { CheckName } from './patrols.constants';

/*
 * The answers of the patrol routes, as their SELECTs shape them (the *_COLS lists of each service):
 * typed here so the OpenAPI document (scripts/openapi-responses.js) and the web console know them.
 * Timestamps are Date on the server and ISO strings on the wire.
 */

/** A scheduled audit (audits.service.ts PLAN_COLS). */
export interface PatrolPlanView {
  id: string;
  name: string;
  /** Asia/Shanghai, 5 fields (or 6 with seconds). */
  cron: string;
  scope: { kind: 'district' | 'zone' | 'group' | 'schools'; ids?: string[] };
  checks: CheckName[];
  enabled: boolean;
  createdBy: string | null;
  createdAt: Date;
  updatedAt: Date;
}

/** One run of a plan for a time slot (audits.service.ts RUN_COLS). */
export interface PatrolRunView {
  id: string;
  planId: string;
  slot: Date;
  evaluatedAt: Date;
  trigger: 'schedule' | 'manual';
  checks: CheckName[];
  schoolCount: number;
  failedSchoolCount: number;
  findingCount: number;
  durationMs: number;
  createdAt: Date;
}

/** One check's result for one school of a run. */

/** One check's verdict for one school in a run (stored in patrol_run_schools.results). */
export interface CheckResult {
  status: 'pass' | 'fail' | 'n/a';
  [k: string]: unknown;
}

/** A school's results in a run (patrol_run_schools). */
export interface PatrolRunSchoolView {
  schoolId: string;
  passed: boolean;
  results: Record<string, CheckResult>;
}

/** A finding (findings.service.ts FINDING_COLS). */
export interface FindingView {
  id: string;
  source: 'audit' | 'round' | 'post';
  check: string;
  schoolId: string | null;
  subjectKind: string | null;
  subjectId: string | null;
  subjectLabel: string;
  message: string;
  detail: Record<string, unknown>;
  runId: string | null;
  roundId: string | null;
  taskId: string | null;
  at: Date;
  createdAt: Date;
}

/** A rectification task (findings.service.ts TASK_COLS); `checkLabel` is the check's zh-CN name. */
export interface RectificationTaskView {
  id: string;
  schoolId: string;
  subjectKey: string;
  check: string;
  checkLabel?: string;
  title: string;
  status: 'open' | 'closed';
  deadline: Date;
  findingCount: number;
  closedAt: Date | null;
  closedBy: string | null;
  closeNote: string | null;
  evidenceRef: string | null;
  /**
   * The photos of the last closing (evidence ids, purpose rectification.photo → GET /video/evidence/:id); kept when
   * the task is sent back (the closing not accepted), replaced by the next closing; empty for a task never closed.
   */
  closePhotoIds: string[];
  /** The last time a supervisor sent the task back, and why (POST …/reopen); null if never. */
  reopenedAt: Date | null;
  reopenedBy: string | null;
  reopenReason: string | null;
  /** How often it was sent back. */
  reopenCount: number;
  createdAt: Date;
  updatedAt: Date;
}

/** A rectification task as listed (GET /rectification-tasks, GET /rectification-tasks/{id}): with its school's name. */
export interface RectificationTaskItem extends RectificationTaskView {
  schoolName: string | null;
}

/**
 * Where an evidence picture came from: video_evidence.source, the video module's EvidenceSource
 * (a higher layer, so named again here; the column's CHECK holds the same four values).
 */
export type EvidencePictureSource = 'snapshot_uri' | 'stream' | 'upload' | 'unknown';

/** A protection-post check-in (field.service.ts CHECKIN_COLS). */
export interface PostCheckinView {
  id: string;
  postId: string;
  schoolId: string;
  personName: string;
  personRole: 'guard' | 'police' | 'staff' | 'volunteer';
  recordedBy: string;
  onBehalf: boolean;
  checkedInAt: Date;
  checkedOutAt: Date | null;
  cameraId: string | null;
  evidenceId: string | null;
  evidenceStatus: 'none' | 'pending' | 'taken' | 'failed';
  evidenceError: string | null;
  /** Where the gate picture came from (its evidence record's source), null while there is none. */
  evidenceSource: EvidencePictureSource | null;
}

/** A guard's patrol as recorded. */
export interface GuardPatrolView {
  id: string;
  schoolId: string;
  guardName: string;
  route: string;
  note: string;
  at: Date;
}

/** A gate opening or closing as recorded. */
export interface GateEventView {
  id: string;
  schoolId: string;
  gate: string;
  state: 'open' | 'closed';
  at: Date;
}

/** A video patrol round without its cameras (the list). */
export interface PatrolRoundSummary {
  id: string;
  operatorId: string;
  operatorName: string;
  size: number;
  startedAt: Date;
  finishedAt: Date | null;
}

/** A camera of a round (rounds.service.ts ITEM_COLS) with the camera's registry facts. */
export interface PatrolRoundItemView {
  cameraId: string;
  schoolId: string;
  position: number;
  favoured: boolean;
  verdict: string | null;
  note: string;
  /** The evidence picture the verdict was made on, when one could be taken. */
  snapshotRef: string | null;
  /** Where that picture came from (its evidence record's source), null without one. */
  snapshotSource: EvidencePictureSource | null;
  verdictAt: Date | null;
  findingId: string | null;
  camera: { name: string; location: string; areaKind: string; streamUrl: string; status: string } | null;
}

export interface PatrolRoundView extends PatrolRoundSummary {
  items: PatrolRoundItemView[];
}
