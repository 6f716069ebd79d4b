/**
 * A small reader of our Dockerfile and .dockerignore, for the tests that play the image build
 * without a Docker engine (test/ops/docker-build.spec.ts). Knows FROM, WORKDIR, COPY (with
 * --from/--chown) and RUN with line continuations; anything else is kept as `other` so a test can
 * refuse what it does not understand rather than skip it silently.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface Instruction {
  op: 'COPY' | 'RUN' | 'WORKDIR' | 'other';
  /** The instruction's text after the keyword, continuations joined. */
  text: string;
  /** COPY: the stage it copies from (--from), else the build context. */
  from?: string;
  /** COPY: sources and destination. */
  sources?: string[];
  dest?: string;
}

export interface Stage {
  image: string;
  name?: string;
  steps: Instruction[];
}

/** The Dockerfile's stages, in order. Comments and parser directives are dropped. */
export function parseDockerfile(text: string): Stage[] {
  const lines: string[] = [];
  let pending = '';
  for (const raw of text.split('\n')) {
    if (/^\s*#/.test(raw) && pending === '') continue;
    if (/^\s*#/.test(raw)) continue; // a comment inside a continued instruction
    const line = raw.replace(/\s+$/, '');
    if (line.endsWith('\\')) {
      pending += line.slice(0, -1) + ' ';
      continue;
    }
    const full = (pending + line).replace(/\s+/g, ' ').trim();
    pending = '';
    if (full) lines.push(full);
  }
  const stages: Stage[] = [];
  for (const line of lines) {
    const [, keyword, rest] = /^(\S+)\s+([\s\S]*)$/.exec(line) ?? [];
    const kw = keyword.toUpperCase();
    if (kw === 'FROM') {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(rest.trim())!;
      stages.push({ image: m[1], name: m[2], steps: [] });
      continue;
    }
    const stage = stages[stages.length - 1];
    if (kw === 'COPY') {
      const words = rest.trim().split(/\s+/);
      let from: string | undefined;
      while (words[0]?.startsWith('--')) {
        const flag = words.shift()!;
        if (flag.startsWith('--from=')) from = flag.slice('--from='.length);
      }
      stage.steps.push({ op: 'COPY', text: rest, from, sources: words.slice(0, -1), dest: words[words.length - 1] });
    } else if (kw === 'RUN' || kw === 'WORKDIR') stage.steps.push({ op: kw, text: rest.trim() });
    else stage.steps.push({ op: 'other', text: line });
  }
  return stages;
}

/** .dockerignore patterns as a predicate over context-relative paths (Docker's rules: rooted, `*` within a segment, `**` across). */
export function dockerIgnore(root: string): (rel: string) => boolean {
  let text = '';
  try {
    text = readFileSync(join(root, '.dockerignore'), 'utf8');
  } catch {
    /* no .dockerignore: nothing is ignored */
  }
  const rules = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const negate = l.startsWith('!');
      const pattern = (negate ? l.slice(1) : l).replace(/^\/+|\/+$/g, '');
      const re = pattern
        .split('/')
        .map((seg) =>
          seg === '**'
            ? '.*'
            : seg
                .replace(/[.+^${}()|[\]\\]/g, '\\$&')
                .replace(/\*/g, '[^/]*')
                .replace(/\?/g, '[^/]'),
        )
        .join('/');
      return { negate, re: new RegExp(`^${re}(/.*)?$`) };
    });
  return (rel) => {
    let ignored = false;
    for (const r of rules) if (r.re.test(rel)) ignored = !r.negate;
    return ignored;
  };
}
