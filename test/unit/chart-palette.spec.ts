import { CHART_BACKGROUNDS, CHART_COLORS, contrast } from '../../web/src/components/charts/palette';

/** The charts' series colours are seen on the dark theme: none may be as dim as ECharts 6's slate #505372 (tester, issue ui9 §3). */
describe('chart palette on the dark theme', () => {
  it('every series colour has at least 3:1 contrast against the page and the panels', () => {
    for (const bg of CHART_BACKGROUNDS) for (const c of CHART_COLORS) expect([c, bg, contrast(c, bg) >= 3]).toEqual([c, bg, true]);
    // The colour that was nearly invisible fails this bar: the check is not vacuous.
    expect(contrast('#505372', '#0f1720')).toBeLessThan(3);
  });

  it('the colours are distinct', () => {
    expect(new Set(CHART_COLORS).size).toBe(CHART_COLORS.length);
  });
});
