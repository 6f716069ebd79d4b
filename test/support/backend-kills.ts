import { press, TestButton } from './devices';
import type { TestApp } from './harness';

/**
 * Buttons pressing while every Postgres backend of the service's database is terminated every
 * `everyMs` for `forMs`, from a connection of the test's own (found by the adversarial passes: a
 * press whose connection dies mid-transaction must be a retryable 503, never lost or doubled).
 * Each button presses `events` event ids in turn (`<code>-ev-<n>`), each retried with the same id
 * after `retryMs` on a 503 or a dropped connection — while the kills go on, and at most 40 more
 * times once they have stopped. Returns the backends killed and what was answered unexpectedly
 * (not 200/201/503, or a 503 without Retry-After).
 */
export async function pressWhileBackendsKilled(
  t: TestApp,
  buttons: TestButton[],
  o: { events: number; forMs: number; everyMs: number; retryMs: number },
): Promise<{ killed: number; unexpected: string[] }> {
  const dbName = new URL(t.config.database.url).pathname.slice(1);
  let killed = 0;
  const killUntil = Date.now() + o.forMs;
  const killer = (async () => {
    while (Date.now() < killUntil) {
      const { rows } = await t.db.query(
        `SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid() AND backend_type = 'client backend'`,
        [dbName],
      );
      killed += rows[0].n;
      await new Promise((r) => setTimeout(r, o.everyMs));
    }
  })();
  const unexpected: string[] = [];
  const device = async (b: TestButton) => {
    for (let n = 0; n < o.events; n++) {
      const eventId = `${b.code}-ev-${n}`;
      for (let afterKills = 0; ;) {
        let status = -1; // the connection to us dropped: a device retries
        try {
          const res = await press(t.baseUrl, b, eventId, 15_000);
          status = res.status;
          if (status === 503 && !res.headers.get('retry-after')) unexpected.push(`${eventId}: 503 without Retry-After`);
          if (![200, 201, 503].includes(status)) unexpected.push(`${eventId}: ${status} ${await res.text()}`);
        } catch {
          /* retried */
        }
        if (status === 200 || status === 201) break;
        if (Date.now() > killUntil && ++afterKills > 40) throw new Error(`${eventId} never committed after the kills stopped`);
        await new Promise((r) => setTimeout(r, o.retryMs));
      }
    }
  };
  await Promise.all([killer, ...buttons.map(device)]);
  return { killed, unexpected };
}
