import { createConnection, createServer, Server, Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

/**
 * A TCP proxy in front of a real server (Postgres), for network faults a test cannot cause on
 * the shared server: `cut()` kills every open connection mid-stream (the server "dies" under a
 * transaction), `down()` also stops accepting (connection refused), `blackhole()` cuts too and then
 * accepts connections it never forwards nor answers (a host that drops packets: unreachable, not
 * refused), `freeze()` keeps the open connections but stops forwarding on them, holding their bytes
 * (a stalled server or a network partition: the client's queries go unanswered; new connections are
 * accepted and never answered), `up()` forwards again (after a freeze, the held bytes first).
 * `slowNew(ms)` forwards a new connection only `ms` after it was accepted (its bytes wait), the open
 * ones as usual: a server that answers but is slow to accept (loaded, at max_connections); 0 = off.
 */
export interface TcpProxy {
  port: number;
  cut: () => void;
  down: () => Promise<void>;
  blackhole: () => Promise<void>;
  freeze: () => void;
  up: () => Promise<void>;
  slowNew: (ms: number) => void;
  close: () => Promise<void>;
  /** Client connections currently open through the proxy (forwarded ones only). */
  readonly open: number;
}

/** `host`: where the proxy listens (default 127.0.0.1; e.g. a lab bridge's address for processes in network namespaces). */
export async function startTcpProxy(targetHost: string, targetPort: number, port = 0, host = '127.0.0.1'): Promise<TcpProxy> {
  const sockets = new Set<Socket>();
  /** Accepted while dropping (blackhole, freeze): never forwarded. */
  const limbo = new Set<Socket>();
  const clients = new Set<Socket>();
  let server: Server | undefined;
  let boundPort = port;
  let dropping = false;
  let frozen = false;
  let held: [Socket, Buffer][] = [];
  let slowNewMs = 0;
  const listen = async () => {
    server = createServer((client) => {
      if (dropping) {
        limbo.add(client);
        client.on('close', () => limbo.delete(client));
        client.on('error', () => undefined);
        return; // accepted, never answered
      }
      if (slowNewMs > 0) {
        client.pause(); // its bytes wait in the socket until forwarded
        sockets.add(client); // cut() ends it too
        const wait = setTimeout(() => !client.destroyed && forwardFrom(client), slowNewMs);
        client.on('close', () => (clearTimeout(wait), sockets.delete(client)));
        client.on('error', () => undefined);
        return;
      }
      forwardFrom(client);
    });
    await new Promise<void>((resolve) => server!.listen(boundPort, host, resolve));
    boundPort = (server.address() as AddressInfo).port;
  };
  const forwardFrom = (client: Socket) => {
    const upstream = createConnection(targetPort, targetHost);
    clients.add(client);
    client.on('close', () => clients.delete(client));
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => undefined);
    }
    const forward = (from: Socket, to: Socket) => {
      from.on('data', (chunk: Buffer) => (frozen ? held.push([to, chunk]) : to.write(chunk)));
      from.on('close', () => to.destroy());
    };
    forward(client, upstream);
    forward(upstream, client);
    client.resume();
  };
  await listen();
  const dropLimbo = () => {
    for (const s of limbo) s.destroy();
    limbo.clear();
  };
  const cut = () => {
    held = [];
    for (const s of sockets) s.destroy();
    sockets.clear();
    dropLimbo();
  };
  const down = async () => {
    dropping = false;
    frozen = false;
    const s = server;
    server = undefined;
    cut();
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  };
  return {
    get port() {
      return boundPort;
    },
    get open() {
      return clients.size;
    },
    cut,
    down,
    blackhole: async () => {
      frozen = false;
      dropping = true;
      cut();
      if (!server) await listen();
    },
    freeze: () => {
      frozen = true;
      dropping = true;
    },
    up: async () => {
      dropLimbo(); // connections accepted while dropping were never forwarded
      dropping = false;
      frozen = false;
      for (const [to, chunk] of held.splice(0)) if (!to.destroyed) to.write(chunk);
      if (!server) await listen();
    },
    slowNew: (ms: number) => {
      slowNewMs = ms;
    },
    close: down,
  };
}
