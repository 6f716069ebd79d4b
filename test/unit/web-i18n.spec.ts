import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import en from '../../web/src/i18n/en';
import zhCN from '../../web/src/i18n/zh-CN';

/**
 * The web console's dictionaries (web/src/i18n): both languages have exactly the same keys, no
 * empty text, the same {placeholders}; and every message key the source names (t('…'), Msg
 * objects, key maps) exists. The compiler checks most of this too (t() takes only known keys,
 * en.ts has zh-CN's type); this also catches keys in places the types cannot see.
 */
type Dict = { [k: string]: string | Dict };
const WEB_SRC = join(__dirname, '..', '..', 'web', 'src');

function flatten(d: Dict, prefix = ''): Map<string, string> {
  const out = new Map<string, string>();
  for (const [k, v] of Object.entries(d)) {
    if (typeof v === 'string') out.set(prefix + k, v);
    else for (const [kk, vv] of flatten(v, `${prefix}${k}.`)) out.set(kk, vv);
  }
  return out;
}

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((e) => {
    const p = join(dir, e);
    return statSync(p).isDirectory() ? sources(p) : /\.(ts|vue)$/.test(e) && !e.endsWith('.d.ts') ? [p] : [];
  });
}

/** Console event type names ('patrol.finding'…), read from the server catalogue the web app imports: not message keys. */
function eventTypes(): Set<string> {
  const reexport = join(WEB_SRC, 'shared', 'server.ts');
  const from = /from '([^']+\/console-events\.catalogue)'/.exec(readFileSync(reexport, 'utf8'))![1];
  const catalogue = readFileSync(join(WEB_SRC, 'shared', `${from}.ts`), 'utf8');
  return new Set([...catalogue.matchAll(/^\s*'([a-z_]+\.[a-z_]+)':/gm)].map((m) => m[1]));
}

const placeholders = (s: string) => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();

describe('web console dictionaries', () => {
  const zh = flatten(zhCN as unknown as Dict);
  const eng = flatten(en as unknown as Dict);
  const sections = new Set([...zh.keys()].map((k) => k.split('.')[0]));

  it('zh-CN and en have the same keys, non-empty texts and the same placeholders', () => {
    expect([...eng.keys()].sort()).toEqual([...zh.keys()].sort());
    for (const [k, v] of zh) {
      expect({ k, empty: v.trim() === '' }).toEqual({ k, empty: false });
      expect({ k, params: placeholders(eng.get(k)!) }).toEqual({ k, params: placeholders(v) });
    }
    // vue-i18n message syntax: a bare @ or | would be read as a link or a plural.
    for (const [k, v] of [...zh, ...eng]) expect({ k, special: /(^|[^{'])[@|]/.test(v) }).toEqual({ k, special: false });
  });

  it('every message key named in web/src exists', () => {
    const missing: string[] = [];
    const events = eventTypes();
    expect(events.has('patrol.finding')).toBe(true);
    const files = sources(WEB_SRC);
    expect(files.length).toBeGreaterThan(10);
    for (const file of files) {
      if (file.includes(`${join('i18n', 'zh-CN.ts')}`) || file.includes(`${join('i18n', 'en.ts')}`)) continue;
      const text = readFileSync(file, 'utf8');
      const where = relative(WEB_SRC, file);
      // Templates and scripts use the typed t() of useT(), never vue-i18n's untyped $t.
      if (/\$t\(/.test(text)) missing.push(`${where}: uses $t()`);
      // Any quoted literal shaped like a key whose first part is a dictionary section.
      for (const m of text.matchAll(/['"`]([a-z][a-zA-Z]*(?:\.[a-zA-Z_0-9]+)+)['"`]/g)) {
        if (sections.has(m[1].split('.')[0]) && !zh.has(m[1]) && !events.has(m[1])) missing.push(`${where}: ${m[1]}`);
      }
      // Composed keys (`status.${s}`): their prefix must be a section with children.
      for (const m of text.matchAll(/`([a-z][a-zA-Z]*(?:\.[a-zA-Z_]+)*)\.\$\{/g)) {
        if (![...zh.keys()].some((k) => k.startsWith(`${m[1]}.`))) missing.push(`${where}: ${m[1]}.*`);
      }
    }
    expect(missing).toEqual([]);
  });

  it('no template or script writes Chinese punctuation itself (：；（）、): it comes from the dictionaries, so English reads "School: checks"', () => {
    // Where Chinese punctuation is data, not text shown: recipient names the server stores composed in Chinese
    // (read apart, then shown in the page's language), and fmtList's Chinese branch (the English one is Intl's).
    const reads = new Set([join('surfaces', 'operator', 'notice-text.ts'), join('lib', 'format.ts')]);
    // The Chinese dictionaries: zh-CN.ts and the per-surface ones merged into it (guard.zh-CN.ts, ntf.zh-CN.ts, …).
    const dictionary = (where: string) => where.startsWith(`i18n${sep}`) && where.endsWith('zh-CN.ts');
    const found: string[] = [];
    for (const file of sources(WEB_SRC)) {
      const where = relative(WEB_SRC, file);
      if (dictionary(where) || reads.has(where)) continue;
      // Comments say what the Chinese page shows: blank them, keeping the line numbers.
      const blank = (c: string) => c.replace(/[^\n]/g, ' ');
      const code = readFileSync(file, 'utf8')
        .replace(/\/\*[\s\S]*?\*\//g, blank)
        .replace(/<!--[\s\S]*?-->/g, blank)
        .replace(/(^|[\s;{}(),])\/\/.*$/gm, (c) => blank(c));
      code.split('\n').forEach((line, i) => {
        if (/[：；（）、]/.test(line)) found.push(`${where}:${i + 1}: ${line.trim()}`);
      });
    }
    expect(found).toEqual([]);
  });
});
