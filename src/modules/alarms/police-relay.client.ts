import { createHmac } from 'node:crypto';

export interface PoliceRelayTarget {
  url: string;
  hmacSecret: string;
  timeoutMs: number;
}

/** HMAC-SHA256 over `<timestamp>.<body>`, hex; the receiver recomputes it with the shared secret. */
export function signRelay(secret: string, timestamp: string, body: string): string {
  return createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex');
}

/**
 * One delivery attempt to the public-security endpoint (一键报警联网). The incident id is the
 * `Idempotency-Key`: a retry after a lost response is recognised by the receiver. Throws on
 * anything but a 2xx so BullMQ retries with backoff.
 */
export async function postToPolice(target: PoliceRelayTarget, incidentId: string, body: object): Promise<number> {
  const json = JSON.stringify(body);
  const timestamp = String(Date.now());
  const res = await fetch(target.url, {
    method: 'POST',
    headers: {
      'Content-Type': 'application/json',
      'Idempotency-Key': incidentId,
      'X-Shouhu-Timestamp': timestamp,
      'X-Shouhu-Signature': `sha256=${signRelay(target.hmacSecret, timestamp, json)}`,
    },
    body: json,
    signal: AbortSignal.timeout(target.timeoutMs),
  });
  await res.arrayBuffer().catch(() => undefined);
  if (res.status < 200 || res.status >= 300) throw new Error(`police endpoint answered ${res.status}`);
  return res.status;
}
