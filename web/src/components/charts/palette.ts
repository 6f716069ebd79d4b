/**
 * The series colours of every chart, on the console's dark background (--sh-bg #0f1720, panels #16212c).
 * ECharts 6's own palette has a dark slate third colour (#505372) that all but vanishes there: each of
 * these has a contrast of at least 3:1 (WCAG's for graphics) against both, and they stay apart from each other.
 */
export const CHART_COLORS = ['#4992ff', '#7cffb2', '#fddd60', '#ff6e76', '#58d9f9', '#ff8a45', '#c58bff', '#3fd5a0', '#ff9ede'] as const;

/** The background colours the charts are drawn on (base.css). */
export const CHART_BACKGROUNDS = ['#0f1720', '#16212c'] as const;

/** WCAG contrast ratio of two #rrggbb colours. */
export function contrast(a: string, b: string): number {
  const lum = (hex: string) => {
    const [r, g, bl] = [1, 3, 5].map((i) => {
      const c = parseInt(hex.slice(i, i + 2), 16) / 255;
      return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * bl;
  };
  const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p);
  return (x + 0.05) / (y + 0.05);
}
