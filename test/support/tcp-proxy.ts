import { createConnection, createServer, Server, Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

/**
 * A TCP proxy in front of a real server (Postgres), for network faults a test cannot cause on
 * the shared server: `cut()` kills every open connection mid-stream (the server "dies" under a
 * transaction), `down()` also stops accepting (connection refused), `blackhole()` cuts too and then
 * accepts connections it never forwards nor answers (a host that drops packets: unreachable, not
 * refused), `up()` forwards again.
 */
export interface TcpProxy {
  port: number;
  cut: () => void;
  down: () => Promise<void>;
  blackhole: () => Promise<void>;
  up: () => Promise<void>;
  close: () => Promise<void>;
}

export async function startTcpProxy(targetHost: string, targetPort: number, port = 0): Promise<TcpProxy> {
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  let boundPort = port;
  let dropping = false;
  const listen = async () => {
    server = createServer((client) => {
      if (dropping) {
        sockets.add(client);
        client.on('close', () => sockets.delete(client));
        client.on('error', () => undefined);
        return; // accepted, never answered
      }
      const upstream = createConnection(targetPort, targetHost);
      for (const s of [client, upstream]) {
        sockets.add(s);
        s.on('close', () => sockets.delete(s));
        s.on('error', () => undefined);
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve) => server!.listen(boundPort, '127.0.0.1', resolve));
    boundPort = (server.address() as AddressInfo).port;
  };
  await listen();
  const cut = () => {
    for (const s of sockets) s.destroy();
    sockets.clear();
  };
  const down = async () => {
    dropping = false;
    const s = server;
    server = undefined;
    cut();
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  };
  return {
    get port() {
      return boundPort;
    },
    cut,
    down,
    blackhole: async () => {
      dropping = true;
      cut();
      if (!server) await listen();
    },
    up: async () => {
      if (dropping) cut(); // connections accepted while dropping were never forwarded
      dropping = false;
      if (!server) await listen();
    },
    close: down,
  };
}
