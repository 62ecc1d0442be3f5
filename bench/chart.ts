/**
 * docs/throughput.svg: requests/s against concurrency, one panel per (model, route), one line per
 * target. Plain string templates: a chart this small does not justify a charting dependency.
 * The x axis is log2 of the concurrency (1, 8, 32, 128 would otherwise crowd into the left edge).
 */
import { Results, findCell } from './results';
import { MODELS, ModelName, ROUTES, Route, TARGETS, TARGET_IDS, TargetId } from './workload';

const COLOURS: Record<TargetId, string> = {
  on: '#1f77b4',
  off: '#ff7f0e',
  express: '#9467bd',
  cached: '#17becf',
  baseline: '#2ca02c',
  lesson: '#d62728',
};
const PANEL_W = 430;
const PANEL_H = 250;
const MARGIN = { left: 64, right: 16, top: 28, bottom: 42 };
const TITLE_H = 48;
/** Height of one legend row; the legend wraps onto more rows when its labels do not fit in one. */
const LEGEND_ROW_H = 22;
const LEGEND_PAD = 14;
/** Rough width of a 12px sans-serif character: enough to lay the legend out without measuring text. */
const LEGEND_CHAR_W = 6.8;

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** A round axis maximum and step: 1, 2 or 5 × 10^k, about five ticks. */
function niceScale(max: number): { top: number; step: number } {
  if (!(max > 0)) return { top: 1, step: 0.2 };
  const rough = max / 5;
  const magnitude = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 5, 10].map((m) => m * magnitude).find((s) => s >= rough) ?? 10 * magnitude;
  return { top: Math.ceil(max / step) * step, step };
}

const fmtTick = (v: number): string =>
  v >= 1000 ? `${Number((v / 1000).toPrecision(6))}k` : String(Number(v.toPrecision(6)));

function panel(results: Results, model: ModelName, route: Route, x0: number, y0: number, targets: TargetId[]): string {
  const concurrencies = results.settings.concurrencies;
  const plotW = PANEL_W - MARGIN.left - MARGIN.right;
  const plotH = PANEL_H - MARGIN.top - MARGIN.bottom;
  const left = x0 + MARGIN.left;
  const top = y0 + MARGIN.top;
  const logs = concurrencies.map((c) => Math.log2(c));
  const [lo, hi] = [Math.min(...logs), Math.max(...logs)];
  const xOf = (c: number): number => left + (hi === lo ? plotW / 2 : ((Math.log2(c) - lo) / (hi - lo)) * plotW);
  const cells = results.cells.filter((c) => c.model === model && c.route === route);
  const { top: yMax, step } = niceScale(Math.max(0, ...cells.map((c) => c.req_per_s)));
  const yOf = (v: number): number => top + plotH - (v / yMax) * plotH;

  const parts: string[] = [];
  parts.push(
    `<text x="${x0 + PANEL_W / 2}" y="${y0 + 18}" class="panel-title">${esc(`${model}, ${route}${route === 'batch' ? ` (${results.settings.batch_size} instances per request)` : ''}`)}</text>`,
  );
  for (let v = 0; v <= yMax + step / 2; v += step) {
    const y = yOf(v);
    parts.push(`<line x1="${left}" x2="${left + plotW}" y1="${y}" y2="${y}" class="grid"/>`);
    parts.push(`<text x="${left - 6}" y="${y + 4}" class="tick" text-anchor="end">${fmtTick(v)}</text>`);
  }
  for (const c of concurrencies) {
    parts.push(`<line x1="${xOf(c)}" x2="${xOf(c)}" y1="${top}" y2="${top + plotH}" class="grid"/>`);
    parts.push(`<text x="${xOf(c)}" y="${top + plotH + 16}" class="tick" text-anchor="middle">${c}</text>`);
  }
  parts.push(`<rect x="${left}" y="${top}" width="${plotW}" height="${plotH}" class="frame"/>`);
  parts.push(
    `<text x="${left + plotW / 2}" y="${top + plotH + 34}" class="axis" text-anchor="middle">concurrent connections (log scale)</text>`,
  );
  parts.push(
    `<text transform="translate(${x0 + 16},${top + plotH / 2}) rotate(-90)" class="axis" text-anchor="middle">requests/s</text>`,
  );

  for (const t of targets) {
    const points = concurrencies
      .map((c) => ({ c, cell: findCell(results, model, route, t, c) }))
      .filter((p) => p.cell !== undefined)
      .map((p) => ({ x: xOf(p.c), y: yOf(p.cell?.req_per_s ?? 0), v: p.cell?.req_per_s ?? 0, c: p.c }));
    if (!points.length) continue;
    parts.push(
      `<polyline points="${points.map((p) => `${p.x.toFixed(1)},${p.y.toFixed(1)}`).join(' ')}" fill="none" stroke="${COLOURS[t]}" stroke-width="2"/>`,
    );
    for (const p of points) {
      parts.push(
        `<circle cx="${p.x.toFixed(1)}" cy="${p.y.toFixed(1)}" r="3.5" fill="${COLOURS[t]}"><title>${esc(`${TARGETS[t].label}, c=${p.c}: ${p.v.toFixed(0)} req/s`)}</title></circle>`,
      );
    }
  }
  return parts.join('\n');
}

export function renderChart(results: Results): string {
  const targets = TARGET_IDS.filter((t) => results.cells.some((c) => c.target === t));
  const cols = 2;
  const panels = MODELS.flatMap((m) => ROUTES.map((r) => ({ model: m, route: r })));
  const rows = Math.ceil(panels.length / cols);
  const width = cols * PANEL_W;
  // Legend items flow left to right (swatch, gap, label, gap) and wrap when the next one would not fit.
  const items: { t: TargetId; x: number; row: number }[] = [];
  let x = 16;
  let row = 0;
  for (const t of targets) {
    const itemW = 32 + TARGETS[t].label.length * LEGEND_CHAR_W + 24;
    if (x > 16 && x + itemW > width - 16) {
      x = 16;
      row++;
    }
    items.push({ t, x, row });
    x += Math.round(itemW);
  }
  const legendRows = Math.max(1, row + 1);
  const height = TITLE_H + rows * PANEL_H + legendRows * LEGEND_ROW_H + LEGEND_PAD;
  const when = results.started_at.replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
  const subtitle =
    `${when}, ${results.machine.cpu_count} x ${results.machine.cpu_model}, Node ${results.machine.node}` +
    `, ${results.settings.duration_s} s per point${results.settings.quick ? ' (quick mode)' : ''}`;

  const body = panels.map((p, i) =>
    panel(results, p.model, p.route, (i % cols) * PANEL_W, TITLE_H + Math.floor(i / cols) * PANEL_H, targets),
  );
  const legend = items.map(({ t, x, row: r }) => {
    const legendY = TITLE_H + rows * PANEL_H + 20 + r * LEGEND_ROW_H;
    return (
      `<line x1="${x}" x2="${x + 24}" y1="${legendY}" y2="${legendY}" stroke="${COLOURS[t]}" stroke-width="3"/>` +
      `<circle cx="${x + 12}" cy="${legendY}" r="3.5" fill="${COLOURS[t]}"/>` +
      `<text x="${x + 32}" y="${legendY + 4}" class="legend">${esc(TARGETS[t].label)}</text>`
    );
  });

  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif">
<style>
  .title { font-size: 16px; font-weight: bold; text-anchor: middle; }
  .subtitle { font-size: 11px; fill: #555; text-anchor: middle; }
  .panel-title { font-size: 13px; font-weight: bold; text-anchor: middle; }
  .tick { font-size: 10px; fill: #444; }
  .axis { font-size: 11px; fill: #333; }
  .legend { font-size: 12px; }
  .grid { stroke: #e4e4e4; stroke-width: 1; }
  .frame { fill: none; stroke: #888; stroke-width: 1; }
</style>
<rect width="100%" height="100%" fill="#fff"/>
<text x="${width / 2}" y="20" class="title">Throughput against concurrency (higher is better)</text>
<text x="${width / 2}" y="38" class="subtitle">${esc(subtitle)}</text>
${body.join('\n')}
${legend.join('\n')}
</svg>
`;
}
