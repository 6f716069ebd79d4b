import { createHmac } from 'node:crypto';
import { createServer, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { until } from './processes';

/**
 * A fake public-security endpoint (outside the system): verifies the HMAC signature, counts
 * every request per Idempotency-Key, accepts each key once (a repeat is answered 200 but not
 * counted again, as the real platform dedups), and can be told to fail for a while, or to hang
 * (take the request and never answer, as a black-holed endpoint does).
 */
export interface PoliceReceiver {
  url: string;
  /** Accepted (deduplicated) deliveries per key. */
  accepted: Map<string, number>;
  /** 2xx answers per key: more than 1 means the sender delivered the same alarm twice. */
  delivered: Map<string, number>;
  /** Every request per key, including failed ones and repeats. */
  requests: Map<string, number>;
  /** The sender's address of every request per key (which process sent it, when processes have their own addresses). */
  senders: Map<string, string[]>;
  /** Requests held while hanging, per sender address. */
  heldFrom: Map<string, number>;
  bodies: Map<string, Record<string, unknown>>;
  badSignatures: number;
  failing: boolean;
  /** Take requests and never answer them (until close or release). */
  hanging: boolean;
  /** Drops the connections of the requests held so far (their senders see them fail and retry). */
  release: () => void;
  close: () => Promise<void>;
}

/** `host`: where it listens (default 127.0.0.1). */
export async function startPoliceReceiver(secret: string, host = '127.0.0.1'): Promise<PoliceReceiver> {
  const r: Omit<PoliceReceiver, 'url' | 'close' | 'release'> = {
    accepted: new Map(),
    delivered: new Map(),
    requests: new Map(),
    senders: new Map(),
    heldFrom: new Map(),
    bodies: new Map(),
    badSignatures: 0,
    failing: false,
    hanging: false,
  };
  const held = new Set<import('node:http').ServerResponse>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const key = String(req.headers['idempotency-key'] ?? '');
      r.requests.set(key, (r.requests.get(key) ?? 0) + 1);
      const from = req.socket.remoteAddress ?? '';
      r.senders.set(key, [...(r.senders.get(key) ?? []), from]);
      const ts = String(req.headers['x-shouhu-timestamp'] ?? '');
      const expected = `sha256=${createHmac('sha256', secret).update(`${ts}.${body}`).digest('hex')}`;
      if (req.headers['x-shouhu-signature'] !== expected) {
        r.badSignatures++;
        res.writeHead(401).end();
        return;
      }
      if (r.hanging) {
        held.add(res);
        r.heldFrom.set(from, (r.heldFrom.get(from) ?? 0) + 1);
        return;
      }
      if (r.failing) {
        res.writeHead(503).end('unavailable');
        return;
      }
      if (!r.accepted.has(key)) r.bodies.set(key, JSON.parse(body));
      r.accepted.set(key, 1);
      r.delivered.set(key, (r.delivered.get(key) ?? 0) + 1);
      res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"ok":true}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const port = (server.address() as AddressInfo).port;
  const out = r as PoliceReceiver;
  out.url = `http://${host}:${port}/alarm`;
  out.release = () => {
    for (const res of held) res.destroy();
    held.clear();
  };
  out.close = () => {
    out.release();
    return new Promise((resolve) => server.close(() => resolve()));
  };
  return out;
}

/** `until` (processes.ts) with a 20 s default: resolves with the first truthy value of `check`. */
export function waitFor<T>(check: () => Promise<T | undefined | null | false>, timeoutMs = 20000, what = 'condition'): Promise<T> {
  return until(check, timeoutMs, what) as Promise<T>;
}
