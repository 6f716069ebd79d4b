#!/usr/bin/env node
'use strict';
/*
 * A throwaway Redis Cluster from Debian's redis-server, for tests, the bench and trying cluster mode
 * on a laptop: N masters, or with `--replicas 1` half of the nodes as masters and one replica each
 * (what a failover needs: a master killed, its replica is promoted after the node timeout):
 *
 *   node scripts/redis-cluster.js 7101 7102 7103     # runs until Ctrl-C, then removes its files
 *   node scripts/redis-cluster.js --replicas 1 7101 7102 7103 7104 7105 7106   # 3 masters + 3 replicas
 *   REDIS_MODE=cluster REDIS_CLUSTER_NODES=redis://127.0.0.1:7101 npm start
 *
 * Each node: --cluster-enabled yes, no persistence, maxmemory-policy noeviction (what BullMQ needs),
 * its own folder for nodes.conf; the cluster bus uses port + 10000. `redis-cli --cluster create`
 * assigns the 16384 slots evenly (with replicas: it chooses the masters and whom each replica
 * follows), then this waits until every node says cluster_state:ok and, with replicas, until every
 * master has its replicas and every replica's link is up (a replica that never synced is not promoted).
 * `cluster-node-timeout` (opts.nodeTimeoutMs, default 5000) is how long a silent master takes to be
 * failed over. Requires Redis ≥ 7 for the sharded socket.io adapter (SPUBLISH/SSUBSCRIBE).
 */
const { execFile, spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const net = require('node:net');
const path = require('node:path');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function cli(args, timeoutMs = 20000) {
  return new Promise((resolve, reject) => {
    execFile('redis-cli', args, { timeout: timeoutMs }, (err, stdout, stderr) =>
      err ? reject(new Error(`redis-cli ${args.join(' ')}: ${stderr || stdout || err.message}`)) : resolve(stdout),
    );
  });
}

/** Whether `port` on `host` can be listened on now. */
function portFree(port, host) {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, host, () => srv.close(() => resolve(true)));
  });
}

/**
 * `count` ports that are free now, each with its cluster bus port (+10000) free too, in 20000–45535
 * (below the usual ephemeral range, so the bus port stays a valid port): for tests that must not
 * collide with another file's cluster or a fixed 7101….
 */
async function freeClusterPorts(count, host = '127.0.0.1') {
  const out = [];
  for (let tries = 0; out.length < count; tries++) {
    if (tries > 500) throw new Error(`no ${count} free redis cluster ports found`);
    const port = 20000 + Math.floor(Math.random() * 25536);
    if (out.includes(port) || out.includes(port + 10000) || out.includes(port - 10000)) continue;
    if ((await portFree(port, host)) && (await portFree(port + 10000, host))) out.push(port);
  }
  return out;
}

/**
 * Starts the nodes and creates the cluster. Returns { ports, urls, masters, replicas (ports, as created), stop(),
 * kill(port, signal), output(port) }; `stop` kills the nodes (SIGKILL after 2 s) and removes the
 * folder; `kill` signals one node (SIGKILL by default: a master lost at once) and resolves when it
 * has exited. `opts.replicas` (default 0): replicas per master; `opts.nodeTimeoutMs` (default 5000):
 * cluster-node-timeout.
 */
async function startRedisCluster(ports, opts = {}) {
  const host = opts.host ?? '127.0.0.1';
  const replicas = opts.replicas ?? 0;
  const masters = [];
  const nodeTimeoutMs = opts.nodeTimeoutMs ?? 5000;
  if (ports.length < 3 * (replicas + 1) || ports.length % (replicas + 1) !== 0)
    throw new Error(`a cluster with ${replicas} replica(s) per master needs 3 or more masters: ${replicas + 1} ports each`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shouhu-redis-cluster-'));
  const procs = [];
  const logs = new Map();
  const stop = async () => {
    await Promise.all(
      procs.map(
        (p) =>
          new Promise((resolve) => {
            if (p.exitCode !== null || p.signalCode !== null) return resolve();
            const t = setTimeout(() => p.kill('SIGKILL'), 2000);
            p.once('exit', () => {
              clearTimeout(t);
              resolve();
            });
            p.kill('SIGTERM');
          }),
      ),
    );
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (const port of ports) {
      const nodeDir = path.join(dir, String(port));
      fs.mkdirSync(nodeDir);
      const args = [
        '--port',
        String(port),
        '--bind',
        host,
        '--cluster-enabled',
        'yes',
        '--cluster-config-file',
        'nodes.conf',
        '--cluster-node-timeout',
        String(nodeTimeoutMs),
      ];
      args.push('--dir', nodeDir, '--save', '', '--appendonly', 'no', '--maxmemory-policy', 'noeviction');
      const p = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
      logs.set(port, '');
      const collect = (b) => logs.set(port, (logs.get(port) + b.toString()).slice(-20000));
      p.stdout.on('data', collect);
      p.stderr.on('data', collect);
      procs.push(p);
    }
    for (let i = 0; i < ports.length; i++) {
      const deadline = Date.now() + 10000;
      while (!logs.get(ports[i]).includes('Ready to accept connections')) {
        if (Date.now() > deadline || procs[i].exitCode !== null) throw new Error(`redis-server ${ports[i]} did not start: ${logs.get(ports[i])}`);
        await sleep(50);
      }
    }
    // With replicas all on one host, redis-cli warns that a replica shares its master's host and goes on.
    await cli(['--cluster', 'create', ...ports.map((p) => `${host}:${p}`), '--cluster-replicas', String(replicas), '--cluster-yes']);
    const deadline = Date.now() + 30000;
    for (const port of ports) {
      for (;;) {
        const info = await cli(['-h', host, '-p', String(port), 'cluster', 'info']).catch(() => '');
        if (/cluster_state:ok/.test(info) && /cluster_slots_ok:16384/.test(info)) break;
        if (Date.now() > deadline) throw new Error(`redis cluster node ${port} not ok: ${info}`);
        await sleep(100);
      }
    }
    // The roles as created (redis-cli chooses which node replicates which master), and every replica in sync.
    for (const port of ports) {
      for (;;) {
        const info = await cli(['-h', host, '-p', String(port), 'info', 'replication']).catch(() => '');
        if (/role:master/.test(info) && (replicas === 0 || new RegExp(`connected_slaves:${replicas}\\b`).test(info))) {
          masters.push(port);
          break;
        }
        if (/role:slave/.test(info) && /master_link_status:up/.test(info) && !/master_sync_in_progress:1/.test(info)) break;
        if (Date.now() > deadline) throw new Error(`redis cluster node ${port}: replication not set up: ${info}`);
        await sleep(100);
      }
    }
  } catch (e) {
    await stop();
    throw e;
  }
  const kill = async (port, signal = 'SIGKILL') => {
    const p = procs[ports.indexOf(port)];
    if (!p) throw new Error(`no redis cluster node on port ${port}`);
    if (p.exitCode !== null || p.signalCode !== null) return;
    const gone = new Promise((resolve) => p.once('exit', resolve));
    p.kill(signal);
    await gone;
  };
  return {
    ports,
    host,
    urls: ports.map((p) => `redis://${host}:${p}`),
    masters,
    replicas: ports.filter((p) => !masters.includes(p)),
    stop,
    kill,
    output: (port) => logs.get(port) ?? '',
  };
}

module.exports = { startRedisCluster, freeClusterPorts };

if (require.main === module) {
  const args = process.argv.slice(2);
  let replicas = 0;
  const at = args.indexOf('--replicas');
  if (at >= 0) {
    replicas = Number(args[at + 1]);
    args.splice(at, 2);
  }
  const ports = args.map(Number);
  if (
    !Number.isInteger(replicas) ||
    replicas < 0 ||
    ports.length < 3 * (replicas + 1) ||
    ports.length % (replicas + 1) !== 0 ||
    ports.some((p) => !Number.isInteger(p) || p < 1 || p > 55535)
  ) {
    process.stderr.write(
      'usage: node scripts/redis-cluster.js [--replicas R] <port> <port> <port> [...] (at least 3 masters; with R replicas each, (R+1) ports a master)\n',
    );
    process.exit(2);
  }
  // A signal while the cluster is being created stops it once created (or failed: stopped already).
  let cluster;
  let quitting = false;
  const quit = () => {
    quitting = true;
    if (cluster) void cluster.stop().then(() => process.exit(0));
  };
  process.on('SIGINT', quit);
  process.on('SIGTERM', quit);
  startRedisCluster(ports, { replicas }).then(
    (c) => {
      cluster = c;
      if (quitting) return quit();
      process.stdout.write(`redis cluster up: REDIS_MODE=cluster REDIS_CLUSTER_NODES=${c.urls.join(',')}\n`);
    },
    (e) => {
      process.stderr.write(`${e.message}\n`);
      process.exit(1);
    },
  );
}
