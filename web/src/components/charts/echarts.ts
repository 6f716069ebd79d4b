import { BarChart, LineChart, ScatterChart } from 'echarts/charts';
import { GridComponent, LegendComponent, TooltipComponent } from 'echarts/components';
import { init, use } from 'echarts/core';
import { CanvasRenderer } from 'echarts/renderers';

/**
 * Apache ECharts, only the parts the console draws (line, bar and scatter charts on a canvas, grid,
 * legend, tooltip). Imported by the chart component alone, which only lazily loaded surfaces use:
 * it never lands in the operator's or the guard's initial JS.
 */
use([LineChart, BarChart, ScatterChart, GridComponent, LegendComponent, TooltipComponent, CanvasRenderer]);

export { init };
export type { EChartsCoreOption as ChartOption } from 'echarts/core';
