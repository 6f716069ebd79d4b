import { defineStore } from 'pinia';
import { ref } from 'vue';
import type { AnyConsoleEvent } from '@/api/console-protocol';
import type { ConsoleEventMap } from '@/shared/server';
import { useFeed } from './feed';
import { useSession } from './session';

/** Findings kept on screen, newest first. */
const MAX_ENTRIES = 50;

export type PatrolEntry =
  | {
      kind: 'summary';
      key: string;
      seq: number;
      at: string;
      source: string;
      runId: string | null;
      total: number;
      schools: string[];
      parts: number;
      of: number;
      sample: string[];
    }
  | { kind: 'finding'; key: string; seq: number; at: string; source: string; findingId: string; check: string; message: string; subjectLabel: string }
  | { kind: 'more'; key: string; seq: number; at: string; source: string; more: number };

/**
 * The patrol findings panel. District audit runs arrive as summaries (schoolId null, `schools`
 * per school, maybe in chunks): one entry per run, chunks merged. Per-school events (rounds, post
 * checks, a school's own audit findings) give one entry per finding listed, plus "N more".
 */
export const usePatrol = defineStore('patrol', () => {
  const session = useSession();
  const feed = useFeed();
  const entries = ref<PatrolEntry[]>([]);
  /** Findings received since login (the badge). */
  const total = ref(0);

  function add(e: { seq: number; at: string }, p: ConsoleEventMap['patrol.finding'] | ConsoleEventMap['patrol.school_findings']): void {
    const findings = Array.isArray(p.findings) ? p.findings : [];
    const count = Number.isFinite(p.total) ? p.total : findings.length;
    const base = { seq: e.seq, at: e.at, source: String(p.source ?? '') };
    total.value += count;
    let items: PatrolEntry[];
    const run = p as ConsoleEventMap['patrol.finding'];
    const schools = run.schools;
    if (!p.schoolId && Array.isArray(schools)) {
      const prev = p.runId ? entries.value.find((x): x is Extract<PatrolEntry, { kind: 'summary' }> => x.kind === 'summary' && x.runId === p.runId) : undefined;
      const ids = new Set(prev?.schools ?? []);
      for (const s of schools) if ((s.total ?? 1) > 0 && s.schoolId) ids.add(s.schoolId);
      items = [
        {
          ...base,
          kind: 'summary',
          key: `run-${p.runId ?? e.seq}`,
          runId: p.runId,
          total: (prev?.total ?? 0) + count,
          schools: [...ids],
          parts: (prev?.parts ?? 0) + 1,
          of: run.chunk?.of ?? 1,
          sample: [...(prev?.sample ?? []), ...findings.map((f) => f.message)].slice(0, 3),
        },
      ];
      if (prev) entries.value = entries.value.filter((x) => x !== prev);
    } else {
      items = findings.map((f) => ({
        ...base,
        kind: 'finding' as const,
        key: `f-${f.findingId}`,
        findingId: f.findingId,
        check: f.check,
        message: f.message,
        subjectLabel: f.subjectLabel,
      }));
      if (count > findings.length) items.push({ ...base, kind: 'more', key: `more-${e.seq}`, more: count - findings.length });
    }
    entries.value = [...items, ...entries.value].slice(0, MAX_ENTRIES);
  }

  feed.subscribe({
    snapshot: () => undefined,
    event: (e: AnyConsoleEvent) => {
      if (e.type === 'patrol.finding' || e.type === 'patrol.school_findings') add(e, e.payload);
    },
  });
  session.onEnd(() => {
    entries.value = [];
    total.value = 0;
  });

  return { entries, total };
});
