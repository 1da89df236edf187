// Clicks over time as a uPlot chart (loaded with the stats page only, not on first load).
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

export function ClicksChart({ times, clicks, label }: { times: number[]; clicks: number[]; label: string }) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);

  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const width = () => Math.max(280, el.clientWidth);
    plot.current = new uPlot(
      {
        width: width(),
        height: 260,
        cursor: { drag: { x: false, y: false } },
        legend: { show: true },
        scales: { y: { range: (_u, _min, max) => [0, Math.max(1, max)] } },
        axes: [{}, { label: 'clicks', values: (_u, ticks) => ticks.map((t) => (Number.isInteger(t) ? String(t) : '')) }],
        series: [{}, { label: 'Clicks', stroke: '#0b57d0', fill: 'rgba(11, 87, 208, 0.12)', width: 2 }],
      },
      [[], []],
      el,
    );
    const onResize = () => plot.current?.setSize({ width: width(), height: 260 });
    window.addEventListener('resize', onResize);
    return () => {
      window.removeEventListener('resize', onResize);
      plot.current?.destroy();
      plot.current = null;
    };
  }, []);

  useEffect(() => {
    plot.current?.setData([times, clicks]);
  }, [times, clicks]);

  // What the chart plots, for tests and for people who inspect the page.
  const plotted = clicks.reduce((a, b) => a + b, 0);
  return <div class="chart" ref={box} role="img" aria-label={label} data-plotted-clicks={plotted} />;
}
