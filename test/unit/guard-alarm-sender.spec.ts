import { alarmPosition, deliverAlarm, isTransientStatus, newClientEventId, PendingAlarm, TryResult } from '../../web/src/surfaces/guard/alarm-sender';

/**
 * The guard phone's alarm delivery (web/src/surfaces/guard/alarm-sender.ts): one key per alarm,
 * the same request until the server has it, refusals not retried, retries bounded, abortable.
 */
describe('guard alarm delivery', () => {
  const pending: PendingAlarm = {
    key: newClientEventId(),
    body: { schoolId: '00000000-0000-4000-8000-000000000001', type: 'fire', location: '食堂' },
    createdAt: 0,
    userId: 'u1',
  };
  const noSleep = () => Promise.resolve();

  function run(results: TryResult<{ id: string }>[], opts: { delays?: number[]; signal?: AbortSignal } = {}) {
    const sent: PendingAlarm[] = [];
    const phases: string[] = [];
    const done = deliverAlarm(
      pending,
      async (p) => {
        sent.push(p);
        return results.shift() ?? { ok: false, transient: true, error: 'no more' };
      },
      { sleep: noSleep, delays: opts.delays, signal: opts.signal, onPhase: (ph) => phases.push(ph) },
    );
    return { done, sent, phases };
  }

  it('makes a key the server accepts (1–128 of [A-Za-z0-9_.:-]), a new one per alarm', () => {
    const a = newClientEventId();
    expect(a).toMatch(/^[A-Za-z0-9_.:-]{1,128}$/);
    expect(newClientEventId()).not.toBe(a);
  });

  it('retries lost answers with the same alarm (same key, same body) until received', async () => {
    const r = run([
      { ok: false, transient: true, error: 'network' },
      { ok: false, transient: true, error: '503' },
      { ok: true, incident: { id: 'i1' } },
    ]);
    await expect(r.done).resolves.toEqual({ id: 'i1' });
    expect(r.phases).toEqual(['sending', 'retrying', 'retrying', 'received']);
    expect(r.sent).toHaveLength(3);
    expect(new Set(r.sent.map((p) => p.key))).toEqual(new Set([pending.key]));
    expect(r.sent.every((p) => p.body === pending.body)).toBe(true);
  });

  it('does not retry a refusal, and stops after the last delay', async () => {
    const refused = run([{ ok: false, transient: false, error: '400' }]);
    await expect(refused.done).resolves.toBeNull();
    expect(refused.phases).toEqual(['sending', 'failed']);
    expect(refused.sent).toHaveLength(1);

    const exhausted = run([], { delays: [1, 1] });
    await expect(exhausted.done).resolves.toBeNull();
    expect(exhausted.phases).toEqual(['sending', 'retrying', 'retrying', 'failed']);
    expect(exhausted.sent).toHaveLength(3);
  });

  it('stops when aborted (logout) and reports nothing more', async () => {
    const ctl = new AbortController();
    const r = run([{ ok: false, transient: true, error: 'network' }], { signal: ctl.signal });
    ctl.abort();
    await expect(r.done).resolves.toBeNull();
    expect(r.phases).toEqual(['sending']);
  });

  it("classifies statuses and turns the phone's fix into the alarm's position (usable ones only)", () => {
    expect([0, 429, 500, 503].every(isTransientStatus)).toBe(true);
    expect([400, 401, 403, 404, 409].some(isTransientStatus)).toBe(false);
    expect(alarmPosition({ latitude: 31.23040049, longitude: 121.4737, accuracy: 12.44 })).toEqual({ latitude: 31.2304, longitude: 121.4737, accuracyM: 12.4 });
    expect(alarmPosition(null)).toBeUndefined();
    expect(alarmPosition({ latitude: NaN, longitude: 1, accuracy: 1 })).toBeUndefined();
    expect(alarmPosition({ latitude: 95, longitude: 1, accuracy: 1 })).toBeUndefined();
    expect(alarmPosition({ latitude: 1, longitude: 1, accuracy: 250000 })).toEqual({ latitude: 1, longitude: 1, accuracyM: 100000 });
  });
});
