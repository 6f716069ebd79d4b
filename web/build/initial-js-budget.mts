import { gzipSync } from 'node:zlib';
import type { Plugin, Rollup } from 'vite';

/**
 * Measures the JavaScript a first visit loads before anything lazy (the entry chunk and its
 * static imports, gzipped at level 9 as a server would send it), prints it, writes it to
 * `build-stats.json` beside index.html (the bench reads it), and fails the build above the
 * budget (issue 13: initial JS ≤ 500 KB gzipped).
 */
export function initialJsBudget(opts: { maxGzipKb: number }): Plugin {
  return {
    name: 'shouhu-initial-js-budget',
    apply: 'build',
    generateBundle(_options, bundle: Rollup.OutputBundle) {
      const chunks = Object.values(bundle).filter((c): c is Rollup.OutputChunk => c.type === 'chunk');
      const byName = new Map(chunks.map((c) => [c.fileName, c]));
      const initial = new Set<string>();
      const visit = (file: string) => {
        if (initial.has(file)) return;
        initial.add(file);
        for (const dep of byName.get(file)?.imports ?? []) visit(dep);
      };
      for (const c of chunks) if (c.isEntry) visit(c.fileName);
      const files = [...initial].map((f) => ({
        file: f,
        raw: Buffer.byteLength(byName.get(f)!.code),
        gzip: gzipSync(byName.get(f)!.code, { level: 9 }).length,
      }));
      const gzip = files.reduce((s, f) => s + f.gzip, 0);
      const raw = files.reduce((s, f) => s + f.raw, 0);
      const all = chunks.reduce((s, c) => s + gzipSync(c.code, { level: 9 }).length, 0);
      const kb = (b: number) => Math.round(b / 102.4) / 10;
      this.info(`initial JS: ${kb(gzip)} KB gzipped (${kb(raw)} KB raw, ${files.length} files); all JS: ${kb(all)} KB gzipped; budget ${opts.maxGzipKb} KB`);
      this.emitFile({
        type: 'asset',
        fileName: 'build-stats.json',
        source: JSON.stringify(
          { initialJsGzipBytes: gzip, initialJsRawBytes: raw, allJsGzipBytes: all, budgetGzipBytes: opts.maxGzipKb * 1024, files },
          null,
          2,
        ),
      });
      if (gzip > opts.maxGzipKb * 1024) this.error(`initial JS is ${kb(gzip)} KB gzipped, over the ${opts.maxGzipKb} KB budget`);
    },
  };
}
