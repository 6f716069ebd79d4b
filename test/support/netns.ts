import { execFileSync, spawnSync } from 'node:child_process';
import { randomInt } from 'node:crypto';

/**
 * Machines for a test: one network namespace per host (iproute2), each with its own address on a
 * bridge in the host namespace (veth pairs). The host namespace — where the test runs, with the
 * shared Postgres and Redis — has the bridge's first address, so every host reaches it and each
 * other, and the test reaches every host. Needs root (CI and our machines are).
 *
 * Names carry the test process's pid (`shouhu-mn-<pid>-<host>`, bridge `shmn<pid>`): a run that
 * died without cleaning up is swept by the next one (its pid is gone).
 */
export interface Lab {
  /** The host namespace's address on the lab's bridge (where Postgres/Redis forwards listen). */
  hostAddr: string;
  /** A host's address. */
  addr: (host: string) => string;
  /** A host's namespace name (for `ip netns exec`). */
  ns: (host: string) => string;
  /** The command line that runs `cmd` in a host's namespace (`ip netns exec` execs it: the pid is the command's own). */
  exec: (host: string, cmd: string, args: string[]) => [string, string[]];
  /** Kills what still runs in the lab's namespaces and removes them and the bridge (idempotent, never throws). */
  destroy: () => void;
}

const PREFIX = 'shouhu-mn-';
const BRIDGE = 'shmn';

const ip = (...args: string[]): string => execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const quiet = (...args: string[]): void => void spawnSync('ip', args, { stdio: 'ignore' });

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
};

function removeNamespace(ns: string): void {
  // Whatever still runs there was started by the test that owns the namespace (a crashed run's processes).
  const pids = spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).stdout ?? '';
  for (const pid of pids.split(/\s+/).filter(Boolean)) {
    try {
      process.kill(Number(pid), 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  quiet('netns', 'del', ns);
}

/** Removes the namespaces and bridges of earlier runs whose test process is gone. */
function sweepStale(): void {
  for (const line of ip('netns', 'list').split('\n')) {
    const m = new RegExp(`^(${PREFIX}(\\d+)-\\S+)`).exec(line);
    if (m && !alive(Number(m[2]))) removeNamespace(m[1]);
  }
  for (const line of ip('-o', 'link', 'show', 'type', 'bridge').split('\n')) {
    const m = new RegExp(`^\\d+: (${BRIDGE}(\\d+)):`).exec(line);
    if (m && !alive(Number(m[2]))) quiet('link', 'del', m[1]);
  }
}

/**
 * Creates the lab or throws saying why (no root, no iproute2, no netns support): a test that needs
 * it fails with that message, it is not skipped.
 */
export function createLab(hosts: string[]): Lab {
  try {
    ip('-V');
  } catch (e) {
    throw new Error(`network namespaces need iproute2's \`ip\` (Debian: apt-get install -y iproute2): ${(e as Error).message}`);
  }
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    throw new Error('network namespaces need root (ip netns add, veth pairs): run this test as root, as CI does');
  }
  sweepStale();
  const pid = process.pid;
  const bridge = `${BRIDGE}${pid}`;
  if (bridge.length > 15) throw new Error(`pid ${pid} makes the interface name ${bridge} too long`);
  // A /24 in 10.200–249.x that no route of this machine uses.
  const routes = ip('-4', 'route', 'show', 'table', 'all');
  let net = '';
  for (let tries = 0; !net; tries++) {
    const candidate = `10.${randomInt(200, 250)}.${randomInt(0, 256)}`;
    if (!routes.includes(`${candidate}.`)) net = candidate;
    if (tries > 50) throw new Error('no free 10.200–249.x.0/24 for the lab');
  }
  const index = new Map(hosts.map((h, i) => [h, i]));
  const ns = (h: string) => {
    if (!index.has(h)) throw new Error(`no host ${h} in the lab`);
    return `${PREFIX}${pid}-${h}`;
  };
  const addr = (h: string) => `${net}.${10 + index.get(h)!}`;
  const veth = (h: string) => `${bridge}${String.fromCharCode(97 + index.get(h)!)}`;
  const lab: Lab = {
    hostAddr: `${net}.1`,
    addr,
    ns,
    exec: (h, cmd, args) => ['ip', ['netns', 'exec', ns(h), cmd, ...args]],
    destroy: () => {
      for (const h of hosts) {
        removeNamespace(ns(h));
        quiet('link', 'del', veth(h));
      }
      quiet('link', 'del', bridge);
    },
  };
  try {
    ip('link', 'add', bridge, 'type', 'bridge');
    ip('addr', 'add', `${lab.hostAddr}/24`, 'dev', bridge);
    ip('link', 'set', bridge, 'up');
    for (const h of hosts) {
      ip('netns', 'add', ns(h));
      ip('link', 'add', veth(h), 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns(h));
      ip('link', 'set', veth(h), 'master', bridge);
      ip('link', 'set', veth(h), 'up');
      ip('-n', ns(h), 'addr', 'add', `${addr(h)}/24`, 'dev', 'eth0');
      ip('-n', ns(h), 'link', 'set', 'eth0', 'up');
      ip('-n', ns(h), 'link', 'set', 'lo', 'up');
    }
  } catch (e) {
    lab.destroy();
    const err = e as Error & { stderr?: string };
    throw new Error(`could not build the network namespaces (root with iproute2 and netns support needed): ${err.stderr?.trim() || err.message}`);
  }
  return lab;
}
