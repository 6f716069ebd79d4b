import { BarChart, LineChart, ScatterChart } from 'echarts/charts';
import { GridComponent, LegendComponent, TooltipComponent } from 'echarts/components';
import { init, use } from 'echarts/core';
import { CanvasRenderer, SVGRenderer } from 'echarts/renderers';

/**
 * Apache ECharts, only the parts the console draws (line, bar and scatter charts, grid, legend —
 * plain or scrolling —, tooltip; SVG for the few-point statistics charts, canvas for the map's many
 * points). Imported by the chart component alone, which only lazily loaded surfaces use: it never
 * lands in the operator's or the guard's initial JS.
 */
use([LineChart, BarChart, ScatterChart, GridComponent, LegendComponent, TooltipComponent, CanvasRenderer, SVGRenderer]);

export { init };
export type { EChartsCoreOption as ChartOption } from 'echarts/core';
