import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Patrols (issue 6): audit plans and their runs (one per plan and time slot), per-school
 * results, findings from every source (audits, video rounds, protection-post checks) and the
 * rectification tasks they open; post check-ins, guard patrol check-ins, gate events, operator
 * video rounds and the last time each camera was looked at. School/camera/post ids carry no
 * foreign keys into the registry: history outlives a removed device.
 */
export class Patrols1764300700000 implements MigrationInterface {
  name = 'Patrols1764300700000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE patrol_plans (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        name text NOT NULL CHECK (length(btrim(name)) > 0),
        cron text NOT NULL,
        scope jsonb NOT NULL CHECK (jsonb_typeof(scope) = 'object'),
        checks text[] NOT NULL CHECK (cardinality(checks) > 0),
        enabled boolean NOT NULL DEFAULT true,
        created_by uuid,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`
      CREATE TABLE patrol_runs (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        plan_id uuid NOT NULL REFERENCES patrol_plans(id) ON DELETE CASCADE,
        slot timestamptz NOT NULL,
        evaluated_at timestamptz NOT NULL,
        trigger text NOT NULL CHECK (trigger IN ('schedule','manual')),
        checks text[] NOT NULL,
        school_count integer NOT NULL,
        failed_school_count integer NOT NULL,
        finding_count integer NOT NULL,
        duration_ms integer NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        UNIQUE (plan_id, slot)
      )`);
    await q.query(`CREATE INDEX patrol_runs_plan_idx ON patrol_runs (plan_id, slot DESC)`);
    await q.query(`
      CREATE TABLE patrol_run_schools (
        run_id uuid NOT NULL REFERENCES patrol_runs(id) ON DELETE CASCADE,
        school_id uuid NOT NULL,
        passed boolean NOT NULL,
        results jsonb NOT NULL,
        PRIMARY KEY (run_id, school_id)
      )`);
    await q.query(`
      CREATE TABLE rectification_tasks (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        school_id uuid NOT NULL,
        subject_key text NOT NULL,
        check_name text NOT NULL,
        title text NOT NULL,
        status text NOT NULL DEFAULT 'open' CHECK (status IN ('open','closed')),
        deadline timestamptz NOT NULL,
        finding_count integer NOT NULL DEFAULT 1,
        closed_at timestamptz,
        closed_by uuid,
        close_note text,
        evidence_ref text,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        CHECK ((status = 'closed') = (closed_at IS NOT NULL))
      )`);
    // One open task per school and subject: a problem found again joins its open task.
    await q.query(`CREATE UNIQUE INDEX rectification_tasks_open_uq ON rectification_tasks (subject_key) WHERE status = 'open'`);
    await q.query(`CREATE INDEX rectification_tasks_school_idx ON rectification_tasks (school_id, status, deadline)`);
    await q.query(`
      CREATE TABLE patrol_findings (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        source text NOT NULL CHECK (source IN ('audit','round','post')),
        check_name text NOT NULL,
        school_id uuid,
        subject_kind text,
        subject_id uuid,
        subject_label text NOT NULL DEFAULT '',
        subject_key text NOT NULL,
        message text NOT NULL,
        detail jsonb NOT NULL DEFAULT '{}',
        run_id uuid REFERENCES patrol_runs(id) ON DELETE CASCADE,
        round_id uuid,
        dedup_key text UNIQUE,
        task_id uuid REFERENCES rectification_tasks(id) ON DELETE SET NULL,
        at timestamptz NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`CREATE INDEX patrol_findings_school_idx ON patrol_findings (school_id, at DESC)`);
    await q.query(`CREATE INDEX patrol_findings_check_idx ON patrol_findings (check_name, at)`);
    await q.query(`CREATE INDEX patrol_findings_run_idx ON patrol_findings (run_id)`);
    await q.query(`
      CREATE TABLE post_checkins (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        post_id uuid NOT NULL,
        school_id uuid NOT NULL,
        person_name text NOT NULL CHECK (length(btrim(person_name)) > 0),
        person_role text NOT NULL CHECK (person_role IN ('guard','police','staff','volunteer')),
        recorded_by uuid NOT NULL,
        on_behalf boolean NOT NULL,
        checked_in_at timestamptz NOT NULL,
        checked_out_at timestamptz,
        CHECK (checked_out_at IS NULL OR checked_out_at >= checked_in_at)
      )`);
    await q.query(`CREATE INDEX post_checkins_post_idx ON post_checkins (post_id, checked_in_at)`);
    await q.query(`
      CREATE TABLE guard_patrols (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        school_id uuid NOT NULL,
        recorded_by uuid NOT NULL,
        guard_name text NOT NULL DEFAULT '',
        route text NOT NULL DEFAULT '',
        note text NOT NULL DEFAULT '',
        at timestamptz NOT NULL
      )`);
    await q.query(`CREATE INDEX guard_patrols_school_idx ON guard_patrols (school_id, at)`);
    await q.query(`CREATE INDEX guard_patrols_at_idx ON guard_patrols (at)`);
    await q.query(`
      CREATE TABLE gate_events (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        school_id uuid NOT NULL,
        gate text NOT NULL CHECK (length(btrim(gate)) > 0),
        state text NOT NULL CHECK (state IN ('open','closed')),
        at timestamptz NOT NULL,
        recorded_by uuid,
        created_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`CREATE INDEX gate_events_at_idx ON gate_events (at)`);
    await q.query(`CREATE INDEX gate_events_school_idx ON gate_events (school_id, gate, at)`);
    await q.query(`
      CREATE TABLE patrol_rounds (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        operator_id uuid NOT NULL,
        operator_name text NOT NULL,
        size integer NOT NULL,
        started_at timestamptz NOT NULL,
        finished_at timestamptz
      )`);
    await q.query(`CREATE INDEX patrol_rounds_operator_idx ON patrol_rounds (operator_id, started_at)`);
    await q.query(`CREATE INDEX patrol_rounds_started_idx ON patrol_rounds (started_at)`);
    await q.query(`
      CREATE TABLE patrol_round_items (
        round_id uuid NOT NULL REFERENCES patrol_rounds(id) ON DELETE CASCADE,
        camera_id uuid NOT NULL,
        school_id uuid NOT NULL,
        position integer NOT NULL,
        favoured boolean NOT NULL DEFAULT false,
        verdict text CHECK (verdict IN ('normal','obstructed','offline','gate_open','guard_absent','crowding','other')),
        note text NOT NULL DEFAULT '',
        snapshot_ref text,
        verdict_at timestamptz,
        finding_id uuid,
        PRIMARY KEY (round_id, camera_id)
      )`);
    await q.query(`CREATE INDEX patrol_round_items_pending_idx ON patrol_round_items (camera_id) WHERE verdict IS NULL`);
    await q.query(`
      CREATE TABLE camera_patrol_marks (
        camera_id uuid PRIMARY KEY,
        school_id uuid NOT NULL,
        last_patrolled_at timestamptz NOT NULL,
        last_verdict text NOT NULL
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    for (const t of [
      'camera_patrol_marks',
      'patrol_round_items',
      'patrol_rounds',
      'gate_events',
      'guard_patrols',
      'post_checkins',
      'patrol_findings',
      'rectification_tasks',
      'patrol_run_schools',
      'patrol_runs',
      'patrol_plans',
    ])
      await q.query(`DROP TABLE IF EXISTS ${t}`);
  }
}
