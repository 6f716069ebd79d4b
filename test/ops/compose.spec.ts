import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { loadConfig } from '../../src/config/config';
import { ROOT } from '../support/processes';

/**
 * docker-compose.yml read as Docker Compose reads it (YAML with merge keys, `${VAR…}` interpolation),
 * without an engine (issue 17 §1): every port a long-running service of our image listens on with
 * the production configuration — HTTP, the GB/T 28181 SIP server (UDP and TCP) and the live-video
 * RTP range (UDP, and TCP for the TCP media modes) — is published, SIP and RTP on the same host
 * port (devices are told the port numbers in SIP and SDP). Secrets have no guessable default.
 */
type Service = {
  build?: string;
  image?: string;
  command?: string[];
  profiles?: string[];
  restart?: string;
  environment?: Record<string, string | number | boolean | null>;
  ports?: (string | { target: number; published?: string | number; protocol?: string })[];
};

const text = readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8');
const compose = parse(text, { merge: true }) as { services: Record<string, Service> };
const SECRET_STANDIN = 'compose-check-stand-in-for-a-required-secret-0123456789';

/** Compose's interpolation: `${V:-d}`/`${V-d}` take d, `${V:?msg}`/`${V?msg}` must be set (a stand-in here), `${V}`/`$V` are empty. */
function interpolate(value: string): string {
  return value
    .replace(/\$\{(\w+)(?:(:?[-?])([^}]*))?\}/g, (_, _name: string, op: string | undefined, arg: string | undefined) =>
      op?.endsWith('-') ? (arg ?? '') : op?.endsWith('?') ? SECRET_STANDIN : '',
    )
    .replace(/\$\$/g, '$');
}

/** Every `${VAR:-default}` / `${VAR-default}` in the file. */
const defaults = [...text.matchAll(/\$\{(\w+):?-([^}]*)\}/g)].map((m) => ({ name: m[1], value: m[2] }));

interface Published {
  host: number;
  container: number;
  proto: 'tcp' | 'udp';
}

function publishedPorts(svc: Service): Published[] {
  const out: Published[] = [];
  const range = (s: string): number[] => {
    const [a, b] = s.split('-').map(Number);
    return Array.from({ length: (b ?? a) - a + 1 }, (_, i) => a + i);
  };
  for (const p of svc.ports ?? []) {
    if (typeof p === 'object') {
      const proto = (p.protocol ?? 'tcp') as 'tcp' | 'udp';
      const hosts = p.published === undefined ? [] : range(interpolate(String(p.published)));
      range(String(p.target)).forEach((c, i) => out.push({ host: hosts[i] ?? NaN, container: c, proto }));
      continue;
    }
    const [spec, proto = 'tcp'] = interpolate(p).split('/');
    const parts = spec.split(':');
    const container = range(parts[parts.length - 1]);
    const host = parts.length > 1 ? range(parts[parts.length - 2]) : [];
    container.forEach((c, i) => out.push({ host: host[i] ?? NaN, container: c, proto: proto as 'tcp' | 'udp' }));
  }
  return out;
}

/** Services running our image for good (not one-shot, not a profile's extra). */
const longRunning = Object.entries(compose.services).filter(
  ([, s]) => (s.build === '.' || s.image?.startsWith('shouhu')) && s.restart !== 'no' && !s.profiles?.length,
);

describe('docker-compose.yml', () => {
  it('runs the api and worker roles of our image', () => {
    expect(longRunning.map(([n, s]) => [n, s.environment?.ROLE]).sort()).toEqual([
      ['api', 'api'],
      ['worker', 'worker'],
    ]);
  });

  it.each(longRunning.map(([name]) => name))('%s publishes every port its production configuration listens on', (name) => {
    const svc = compose.services[name];
    const env = Object.fromEntries(Object.entries(svc.environment ?? {}).map(([k, v]) => [k, interpolate(String(v ?? ''))]));
    expect(env.NODE_ENV).toBe('production');
    const cfg = loadConfig(env);
    const listens: { port: number; proto: 'tcp' | 'udp'; sameOnHost: boolean; what: string }[] = [];
    if (cfg.role !== 'worker') {
      listens.push({ port: cfg.http.port, proto: 'tcp', sameOnHost: false, what: 'http.port' });
      if (cfg.gb28181.enabled) {
        for (const proto of ['udp', 'tcp'] as const) listens.push({ port: cfg.gb28181.port, proto, sameOnHost: true, what: 'gb28181.port' });
        if (cfg.video.enabled)
          for (let port = cfg.video.rtpPortMin; port <= cfg.video.rtpPortMax; port++)
            for (const proto of ['udp', 'tcp'] as const) listens.push({ port, proto, sameOnHost: true, what: 'video.rtpPortMin..rtpPortMax' });
      }
    }
    const published = publishedPorts(svc);
    const missing = listens
      .filter((l) => !published.some((p) => p.container === l.port && p.proto === l.proto && (!l.sameOnHost || p.host === l.port)))
      .map((l) => `${l.what} ${l.port}/${l.proto}`);
    expect({ missing: missing.length, first: missing.slice(0, 6) }).toEqual({ missing: 0, first: [] });
    if (cfg.role !== 'worker') {
      expect(cfg.gb28181.enabled).toBe(true); // production turns the SIP server on
      expect(listens.length).toBeGreaterThan(3);
    }
  });

  it('publishes what the image EXPOSEs for those ports', () => {
    const exposed = [...readFileSync(join(ROOT, 'Dockerfile'), 'utf8').matchAll(/^EXPOSE\s+(.+)$/gm)].flatMap((m) => m[1].trim().split(/\s+/));
    const api = publishedPorts(compose.services.api);
    for (const e of exposed) {
      const [spec, proto = 'tcp'] = e.split('/');
      const [a, b] = spec.split('-').map(Number);
      for (let port = a; port <= (b ?? a); port++) expect(api.some((p) => p.container === port && p.proto === proto)).toBe(true);
    }
  });

  it('has no guessable default for a password, secret or token', () => {
    const guessable = defaults.filter((d) => /PASSWORD|SECRET|TOKEN/.test(d.name) && d.value !== '' && !d.name.startsWith('DEMO_'));
    expect(guessable).toEqual([]);
    expect(compose.services.postgres.environment?.POSTGRES_PASSWORD).toMatch(/^\$\{POSTGRES_PASSWORD:\?.+\}$/);
    // The service's DATABASE_URL carries the same required password.
    expect(compose.services.api.environment?.DATABASE_URL).toContain('${POSTGRES_PASSWORD:?');
  });
});
