/** A small uPlot time-series chart: made once, fed new data on every poll, resized with its box. */
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';

/** One line of a chart. */
export interface Line {
  label: string;
  values: (number | null)[];
  color: string;
}

/** The chart; `time` is Unix seconds. */
export function Chart(props: { title: string; unit?: string; time: number[]; lines: Line[] }) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | undefined>(undefined);
  const shape = props.lines.map((l) => l.label).join('|');
  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const opts: uPlot.Options = {
      width: Math.max(el.clientWidth, 200),
      height: 160,
      legend: { show: true, live: false },
      cursor: { drag: { x: false, y: false } },
      scales: { y: { range: (_u, _min, max) => [0, max > 0 ? max * 1.1 : 1] } },
      axes: [
        { stroke: '#667', grid: { stroke: '#eee' } },
        {
          stroke: '#667',
          grid: { stroke: '#eee' },
          size: 64,
          values: (_u, ticks) => ticks.map((t) => `${+t.toFixed(2)}${props.unit ?? ''}`),
        },
      ],
      series: [
        {},
        ...props.lines.map((l) => ({
          label: l.label,
          stroke: l.color,
          width: 1.5,
          spanGaps: false,
          points: { size: 4 },
        })),
      ],
    };
    plot.current = new uPlot(
      opts,
      [props.time, ...props.lines.map((l) => l.values)] as uPlot.AlignedData,
      el,
    );
    const resize = new ResizeObserver(() => {
      plot.current?.setSize({ width: Math.max(el.clientWidth, 200), height: 160 });
    });
    resize.observe(el);
    return () => {
      resize.disconnect();
      plot.current?.destroy();
      plot.current = undefined;
    };
  }, [shape]);
  useEffect(() => {
    plot.current?.setData([props.time, ...props.lines.map((l) => l.values)] as uPlot.AlignedData);
  }, [props.time, props.lines]);
  return (
    <figure class="chart" data-chart={props.title}>
      <figcaption>{props.title}</figcaption>
      <div ref={box} />
    </figure>
  );
}
