import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ConsoleEventInput, ConsoleEventMap, IncidentSummary } from '../../src/modules/console-events/console-events.catalogue';
import type { ConsoleEventsService } from '../../src/modules/console-events/console-events.service';

/**
 * The console event catalogue is checked by the compiler: each event type takes exactly its own
 * payload. The proof is the `@ts-expect-error` lines below, checked by `npm run typecheck`
 * (tsconfig.json includes test/): if one of them compiled, the directive would be unused and
 * typecheck would fail. Jest runs this file too, to keep it in the suite and to check that
 * typecheck really covers it.
 */

/** What producers pass to ConsoleEventsService.append. */
type AppendArg = Parameters<ConsoleEventsService['append']>[1];

const SCHOOL = '00000000-0000-4000-8000-000000000001';

const summary: IncidentSummary = {
  incidentId: '00000000-0000-4000-8000-000000000002',
  schoolId: SCHOOL,
  schoolName: '甲小学',
  zoneId: null,
  type: 'intrusion',
  priority: 'P1',
  source: 'device',
  status: 'raised',
  location: '南门',
  areaKind: 'gate',
  note: '',
  alarmDeviceId: null,
  cameraId: null,
  pressCount: 1,
  firstPressAt: '2025-03-03T00:00:00.000Z',
  lastPressAt: '2025-03-03T00:00:00.000Z',
  drill: false,
  outcome: null,
  cameras: [],
  raisedBy: 'guard',
  raisedById: null,
  acknowledgedBy: null,
  escalationLevel: 0,
  relay: { required: true, deliveredAt: null, attempts: 0, late: false },
  reporterPosition: null,
};

const outage: ConsoleEventMap['device.outage'] = {
  schoolId: SCHOOL,
  outageId: '00000000-0000-4000-8000-000000000003',
  status: 'open',
  offline: 3,
  peak: 3,
  affected: 4,
  openedAt: '2025-03-03T00:00:00.000Z',
  closedAt: null,
  overdue: false,
};

const finding = { findingId: 'f1', check: 'gate', message: '南门未关闭', subjectLabel: '甲小学', taskId: null };

// ---- accepted: each type with its own payload, optional fields included
const accepted: AppendArg = [
  { type: 'incident.raised', schoolId: SCHOOL, payload: summary },
  { type: 'incident.escalated', schoolId: SCHOOL, payload: { ...summary, level: 2 } },
  { type: 'incident.relay_late', schoolId: SCHOOL, payload: { ...summary, lateAfterSeconds: 30 } },
  { type: 'device.outage', schoolId: SCHOOL, payload: { ...outage, wentOffline: ['d1'], recovered: [] } },
  { type: 'device.outage', schoolId: SCHOOL, payload: { ...outage, newlyOverdue: [{ deviceId: 'd1', kind: 'camera' }] } },
  {
    type: 'patrol.finding',
    schoolId: null,
    payload: { schoolId: null, source: 'audit', runId: null, total: 1, findings: [finding], chunk: { index: 1, of: 1 } },
  },
];
const narrowed: ConsoleEventInput<'patrol.finding' | 'patrol.school_findings'> = {
  type: 'patrol.school_findings',
  schoolId: SCHOOL,
  payload: { schoolId: SCHOOL, source: 'audit', runId: null, total: 1, findings: [finding] },
};

// ---- refused: a payload of another type
// (reported at the declaration: the payload is a whole other type, not a field to point at)
// @ts-expect-error a device-outage payload is not an incident.escalated payload
const outageAsEscalation: ConsoleEventInput = {
  type: 'incident.escalated',
  schoolId: SCHOOL,
  payload: outage,
};
const escalationAsOutage: ConsoleEventInput = {
  type: 'device.outage',
  schoolId: SCHOOL,
  // @ts-expect-error an incident payload is not a device.outage payload
  payload: { ...summary, level: 2 },
};
// @ts-expect-error a union narrowed to patrol.finding refuses other types
const outsideNarrowing: ConsoleEventInput<'patrol.finding'>['type'] = 'device.outage';

// ---- refused: misspelled payload fields (optional, required, nested) and an unknown type
const misspeltOptional: ConsoleEventInput = {
  type: 'device.outage',
  schoolId: SCHOOL,
  payload: {
    ...outage,
    // @ts-expect-error `newlyOverdue` misspelt
    newlyOverdeu: [{ deviceId: 'd1', kind: 'camera' }],
  },
};
const misspeltRequired: ConsoleEventInput = {
  type: 'incident.relay_late',
  schoolId: SCHOOL,
  payload: {
    ...summary,
    // @ts-expect-error `lateAfterSeconds` misspelt
    lateAfterSecond: 30,
  },
};
const misspeltNested: ConsoleEventInput = {
  type: 'patrol.finding',
  schoolId: SCHOOL,
  payload: {
    schoolId: SCHOOL,
    source: 'round',
    runId: null,
    total: 1,
    findings: [
      {
        ...finding,
        // @ts-expect-error `taskId` misspelt
        taskID: null,
      },
    ],
  },
};
const unknownType: ConsoleEventInput = {
  // @ts-expect-error not in the catalogue
  type: 'incident.raise',
  schoolId: SCHOOL,
  payload: summary,
};

describe('console event catalogue types', () => {
  it('is checked by npm run typecheck (tsconfig.json includes test/)', () => {
    const root = join(__dirname, '..', '..');
    const tsconfig = JSON.parse(readFileSync(join(root, 'tsconfig.json'), 'utf8')) as { include: string[] };
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    expect(tsconfig.include).toContain('test');
    expect(pkg.scripts.typecheck).toMatch(/tsc .*-p tsconfig\.json/);
  });

  it('keeps the accepted and refused cases as values (nothing elided)', () => {
    expect((accepted as ConsoleEventInput[]).map((e) => e.type)).toEqual([
      'incident.raised',
      'incident.escalated',
      'incident.relay_late',
      'device.outage',
      'device.outage',
      'patrol.finding',
    ]);
    expect(narrowed.type).toBe('patrol.school_findings');
    const refused = [outageAsEscalation, escalationAsOutage, outsideNarrowing, misspeltOptional, misspeltRequired, misspeltNested, unknownType];
    expect(refused).toHaveLength(7);
  });
});
