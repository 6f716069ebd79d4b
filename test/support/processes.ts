import { ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';

export const ROOT = join(__dirname, '..', '..');

export async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as AddressInfo).port;
  await new Promise((r) => srv.close(r));
  return port;
}

/** A child process we started, with its output kept for diagnosis. */
export interface Proc {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

export function start(cmd: string, args: string[], env: NodeJS.ProcessEnv, cwd = ROOT): Proc {
  const child = spawn(cmd, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const keep = (b: Buffer) => {
    out = (out + b.toString()).slice(-20000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  return { child, output: () => out, exited };
}

/**
 * Kills a process we started (by its own handle) and waits until it is gone. A process that has not
 * gone 20 s after a gentler signal is killed (SIGKILL): a test's clean-up never waits for ever.
 */
export async function stop(p: Proc | undefined, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  if (!p || p.child.exitCode !== null || p.child.signalCode !== null) return;
  p.child.kill(signal);
  if (signal === 'SIGKILL') return void (await p.exited);
  let timer: NodeJS.Timeout | undefined;
  const gone = await Promise.race([p.exited.then(() => true), new Promise<false>((r) => (timer = setTimeout(() => r(false), 20000)))]);
  clearTimeout(timer);
  if (!gone) {
    p.child.kill('SIGKILL');
    await p.exited;
  }
}

/** A private redis-server (no persistence) on a free port: restarting it loses everything in it. `bind`: its address (default 127.0.0.1). */
export async function startRedis(port: number, bind = '127.0.0.1'): Promise<Proc> {
  // Bound to another address than loopback (a lab bridge), it must take clients from there.
  const protectedMode = bind === '127.0.0.1' ? [] : ['--protected-mode', 'no'];
  const p = start(
    'redis-server',
    ['--port', String(port), '--bind', bind, ...protectedMode, '--save', '', '--appendonly', 'no', '--maxmemory-policy', 'noeviction'],
    process.env,
  );
  const deadline = Date.now() + 10000;
  while (!p.output().includes('Ready to accept connections')) {
    if (Date.now() > deadline || p.child.exitCode !== null) throw new Error(`redis-server did not start: ${p.output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return p;
}

export async function waitHttp(url: string, timeoutMs = 30000, proc?: Proc): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const res = await fetch(url);
      if (res.ok) return;
    } catch {
      /* not up yet */
    }
    if (proc && proc.child.exitCode !== null) throw new Error(`process exited: ${proc.output()}`);
    if (Date.now() > deadline) throw new Error(`${url} not up in time: ${proc?.output() ?? ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

type Truthy<T> = Exclude<T, null | undefined | false | 0 | ''>;

/**
 * Polls `check` until it gives a truthy value and returns that value, or throws after `ms`, naming
 * `what`. The first check is at once, the next after 10 ms, each pause then half again as long, up
 * to 100 ms: a condition that holds soon is seen within milliseconds, and a long wait (often one
 * HTTP request or query per check) does not load the shared machine. The one polling wait of the
 * tests (police-receiver.ts `waitFor` is this with its defaults).
 */
export async function until<T>(check: () => T | Promise<T>, ms: number, what: string): Promise<Truthy<T>> {
  const deadline = Date.now() + ms;
  for (let pause = 10; ; pause = Math.min(100, Math.round(pause * 1.5))) {
    const v = await check();
    if (v) return v as Truthy<T>;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, pause));
  }
}
