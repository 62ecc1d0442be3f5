/**
 * Turns a run's cells into the comparison table, the HTTP layer floor table, the Open Inference
 * Protocol's table and the isolation table (plain text for the terminal, markdown for the document)
 * and evaluates the performance targets against them.
 */
import {
  DEADLINE_BOUND_MS,
  DEADLINE_CLIENTS,
  DEADLINE_MS,
  ISOLATION_CELL_IDS,
  POISON_BAD_CLIENTS,
  POISON_GOOD_CLIENTS,
  POISON_MIN_OK,
} from './isolation';
import {
  Cell,
  Evaluation,
  FloorCell,
  IsolationCell,
  IsolationLoad,
  Results,
  RssResult,
  rssCompared,
  V2Cell,
  findCell,
  findV2Cell,
} from './results';
import { V2_FORMS, V2_MODELS, V2Form, V2ModelName } from './v2';
import {
  FLOOR_LABELS,
  FLOOR_TARGET_IDS,
  MODELS,
  ModelName,
  ROUTES,
  Route,
  TARGETS,
  TARGET_IDS,
  TargetId,
} from './workload';

interface Row {
  model: ModelName;
  route: Route;
  concurrency: number;
}

function rowsOf(results: Pick<Results, 'settings'>): Row[] {
  const rows: Row[] = [];
  for (const model of MODELS) {
    for (const route of ROUTES) {
      for (const concurrency of results.settings.concurrencies) rows.push({ model, route, concurrency });
    }
  }
  return rows;
}

/** The targets that have at least one cell, in the canonical order. */
function targetsIn(results: Pick<Results, 'cells'>): TargetId[] {
  return TARGET_IDS.filter((t) => results.cells.some((c) => c.target === t));
}

const fmtRate = (x: number | undefined): string =>
  x === undefined || !Number.isFinite(x) ? '-' : x >= 100 ? x.toFixed(0) : x.toFixed(1);
const fmtMs = (x: number | undefined): string =>
  x === undefined || !Number.isFinite(x) ? '-' : x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2);
/** µs, whole. */
const fmtUs = (x: number | null | undefined): string => (x == null || !Number.isFinite(x) ? '-' : x.toFixed(0));
const fmtRatio = (a: Cell | undefined, b: Cell | undefined): string =>
  a && b && b.req_per_s > 0 ? `${(a.req_per_s / b.req_per_s).toFixed(2)}x` : '-';

interface Column<R = Row> {
  header: string;
  /** Markdown alignment. */
  right: boolean;
  value(row: R): string;
}

interface Group {
  title: string;
  span: number;
}

function columns(results: Pick<Results, 'cells' | 'settings'>): {
  groups: Group[];
  cols: Column[];
} {
  const cell = (t: TargetId, r: Row): Cell | undefined => findCell(results, r.model, r.route, t, r.concurrency);
  const groups: Group[] = [{ title: '', span: 3 }];
  const cols: Column[] = [
    { header: 'model', right: false, value: (r) => r.model },
    { header: 'route', right: false, value: (r) => r.route },
    { header: 'c', right: true, value: (r) => String(r.concurrency) },
  ];
  const present = targetsIn(results);
  for (const t of present) {
    groups.push({ title: TARGETS[t].short, span: 5 });
    cols.push(
      { header: 'req/s', right: true, value: (r) => fmtRate(cell(t, r)?.req_per_s) },
      // Results files older than schema 4 have no CPU time per answer.
      { header: 'CPU µs', right: true, value: (r) => fmtUs(cell(t, r)?.cpu_us_per_request) },
      { header: 'p50', right: true, value: (r) => fmtMs(cell(t, r)?.p50_ms) },
      { header: 'p99', right: true, value: (r) => fmtMs(cell(t, r)?.p99_ms) },
      { header: 'err', right: true, value: (r) => (cell(t, r) ? String(cell(t, r)?.errors) : '-') },
    );
  }
  const ratios: Column[] = [];
  if (present.includes('on') && present.includes('baseline')) {
    ratios.push({ header: 'on/base', right: true, value: (r) => fmtRatio(cell('on', r), cell('baseline', r)) });
  }
  if (present.includes('on') && present.includes('off')) {
    ratios.push({ header: 'on/off', right: true, value: (r) => fmtRatio(cell('on', r), cell('off', r)) });
  }
  // Same service, same settings, only the HTTP adapter differs: what the framework layer costs.
  if (present.includes('on') && present.includes('express')) {
    ratios.push({ header: 'fastify/express', right: true, value: (r) => fmtRatio(cell('on', r), cell('express', r)) });
  }
  // Same service, same settings, only the prediction cache differs: what a repeated input saves.
  if (present.includes('on') && present.includes('cached')) {
    ratios.push({ header: 'cached/on', right: true, value: (r) => fmtRatio(cell('cached', r), cell('on', r)) });
  }
  if (present.includes('on') && present.includes('lesson')) {
    ratios.push({ header: 'on/lesson', right: true, value: (r) => fmtRatio(cell('on', r), cell('lesson', r)) });
  }
  if (ratios.length) groups.push({ title: 'req/s ratios', span: ratios.length });
  cols.push(...ratios);
  return { groups, cols };
}

/**
 * What the client cost beside the target, over every REST cell: wrk's CPU time per answer as a share of
 * the target's. Well under 1 everywhere shows that the client is not what limits the cells.
 */
export function clientCostSummary(results: Pick<Results, 'cells'>): string {
  const shares = results.cells
    .filter((c) => c.client_cpu_us_per_request != null && c.cpu_us_per_request != null && c.cpu_us_per_request > 0)
    .map((c) => ({ c, share: (c.client_cpu_us_per_request as number) / (c.cpu_us_per_request as number) }))
    .sort((a, b) => a.share - b.share);
  if (!shares.length) return '';
  const pct = (x: number): string => `${(x * 100).toFixed(0)}%`;
  const top = shares[shares.length - 1];
  return (
    `wrk's own CPU time per answer was ${pct(shares[0].share)} to ${pct(top.share)} of the target's ` +
    `(median ${pct(shares[Math.floor(shares.length / 2)].share)}) over ${shares.length} cells; the highest: ` +
    `${TARGETS[top.c.target].short} ${top.c.model} ${top.c.route} c=${top.c.concurrency} ` +
    `(${fmtUs(top.c.client_cpu_us_per_request)} µs against ${fmtUs(top.c.cpu_us_per_request)} µs)`
  );
}

/** The table for the terminal: one row per (model, route, concurrency), a column group per target. */
export function textTable(results: Pick<Results, 'cells' | 'settings'>): string {
  const { groups, cols } = columns(results);
  return groupedText(groups, cols, rowsOf(results), (a, b) => a.model !== b.model || a.route !== b.route);
}

/**
 * A plain-text table whose columns come in titled groups, separated by " | " (within a group, by two
 * spaces); a blank line goes between two rows where `breakBetween` says so.
 */
function groupedText<R>(groups: Group[], cols: Column<R>[], rows: R[], breakBetween: (a: R, b: R) => boolean): string {
  const cells = rows.map((r) => cols.map((c) => c.value(r)));
  const widths = cols.map((c, i) => Math.max(c.header.length, ...cells.map((row) => row[i].length)));
  const pad = (s: string, i: number): string => (cols[i].right ? s.padStart(widths[i]) : s.padEnd(widths[i]));
  const groupStarts = new Set<number>();
  let at = 0;
  for (const g of groups) {
    groupStarts.add(at);
    at += g.span;
  }
  const join = (parts: string[]): string =>
    parts.map((p, i) => (i === 0 ? p : (groupStarts.has(i) ? ' | ' : '  ') + p)).join('');
  let titleLine = '';
  let col = 0;
  for (const g of groups) {
    const span = widths.slice(col, col + g.span).reduce((a, b) => a + b, 0) + 2 * (g.span - 1);
    titleLine += (col === 0 ? '' : ' | ') + g.title.padEnd(span);
    col += g.span;
  }
  const header = join(cols.map((c, i) => pad(c.header, i)));
  const lines = [titleLine.trimEnd(), header, '-'.repeat(header.length)];
  rows.forEach((r, ri) => {
    if (ri > 0 && breakBetween(rows[ri - 1], r)) lines.push('');
    lines.push(join(cells[ri].map((v, i) => pad(v, i))));
  });
  return lines.join('\n');
}

/** The same table in markdown; the target's name goes into each header since markdown has no column groups. */
export function markdownTable(results: Pick<Results, 'cells' | 'settings'>): string {
  const { groups, cols } = columns(results);
  return groupedMarkdown(groups, cols, rowsOf(results));
}

/** A grouped table in markdown: each group's title (but a ratios group's) goes into its columns' headers. */
function groupedMarkdown<R>(groups: Group[], cols: Column<R>[], rows: R[]): string {
  const headers: string[] = [];
  let col = 0;
  for (const g of groups) {
    for (let i = 0; i < g.span; i++, col++) {
      const h = cols[col].header;
      headers.push(g.title && !g.title.endsWith('ratios') ? `${g.title} ${h}` : h);
    }
  }
  const lines = [`| ${headers.join(' | ')} |`, `|${cols.map((c) => (c.right ? '---:' : '---')).join('|')}|`];
  for (const r of rows) lines.push(`| ${cols.map((c) => c.value(r)).join(' | ')} |`);
  return lines.join('\n');
}

/** Batch routes in instances per second (req/s × instances per request), for the document. */
export function markdownInstancesTable(results: Pick<Results, 'cells' | 'settings'>): string {
  const present = targetsIn(results);
  const lines = [
    `| model | c | ${present.map((t) => `${TARGETS[t].short} inst/s`).join(' | ')} |`,
    `|---|---:|${present.map(() => '---:').join('|')}|`,
  ];
  for (const model of MODELS) {
    for (const c of results.settings.concurrencies) {
      const values = present.map((t) => {
        const cell = findCell(results, model, 'batch', t, c);
        return cell?.instances_per_s != null ? fmtRate(cell.instances_per_s) : '-';
      });
      lines.push(`| ${model} | ${c} | ${values.join(' | ')} |`);
    }
  }
  return lines.join('\n');
}

/**
 * The HTTP layer floor, one row per floor target: GET /health/live, its share of the bare node:http
 * server's req/s, and, for scale, the same process's iris single predict at the same concurrency and
 * its share of that floor (close to 1: the HTTP layer, not inference, is what limits the route).
 */
interface FloorRow {
  server: string;
  values: string[];
}
const FLOOR_HEADERS = ['req/s', 'CPU µs', 'p50', 'p99', 'err', 'of bare', 'predict req/s', 'predict/floor'];

function floorRows(results: Pick<Results, 'cells' | 'floor'>): FloorRow[] {
  return FLOOR_TARGET_IDS.map((t) => results.floor.find((f) => f.target === t))
    .filter((f): f is FloorCell => f !== undefined)
    .map((f) => {
      const predict = findCell(results, 'iris', 'single', f.target, f.concurrency);
      return {
        server: FLOOR_LABELS[f.target],
        values: [
          fmtRate(f.req_per_s),
          fmtUs(f.cpu_us_per_request),
          fmtMs(f.p50_ms),
          fmtMs(f.p99_ms),
          String(f.errors),
          f.of_bare === null ? '-' : `${(f.of_bare * 100).toFixed(0)}%`,
          fmtRate(predict?.req_per_s),
          predict && f.req_per_s > 0 ? `${((predict.req_per_s / f.req_per_s) * 100).toFixed(0)}%` : '-',
        ],
      };
    });
}

/** The floor table for the terminal; empty when no floor cell was measured. */
export function floorTextTable(results: Pick<Results, 'cells' | 'floor'>): string {
  const rows = floorRows(results);
  if (!rows.length) return '';
  const first = Math.max('server'.length, ...rows.map((r) => r.server.length));
  const widths = FLOOR_HEADERS.map((h, i) => Math.max(h.length, ...rows.map((r) => r.values[i].length)));
  const line = (server: string, values: string[]): string =>
    [server.padEnd(first), ...values.map((v, i) => v.padStart(widths[i]))].join('  ');
  const header = line('server', FLOOR_HEADERS);
  return [header, '-'.repeat(header.length), ...rows.map((r) => line(r.server, r.values))].join('\n');
}

/** The same in markdown; empty when no floor cell was measured. */
export function markdownFloorTable(results: Pick<Results, 'cells' | 'floor'>): string {
  const rows = floorRows(results);
  if (!rows.length) return '';
  return [
    `| server | ${FLOOR_HEADERS.join(' | ')} |`,
    `|---|${FLOOR_HEADERS.map(() => '---:').join('|')}|`,
    ...rows.map((r) => `| ${r.server} | ${r.values.join(' | ')} |`),
  ].join('\n');
}

/**
 * The Open Inference Protocol's cells: one row per (model, concurrency), a column group per form (the
 * body's size, req/s with the CPU time per request beside it, latencies), and what binary changes.
 */
interface V2Row {
  model: V2ModelName;
  concurrency: number;
}

const fmtBytes = (x: number | undefined): string =>
  x === undefined ? '-' : x >= 2 ** 20 ? `${(x / 2 ** 20).toFixed(1)} MiB` : `${(x / 1024).toFixed(1)} KiB`;
const fmtFactor = (a: number | null | undefined, b: number | null | undefined): string =>
  a != null && b != null && b > 0 ? `${(a / b).toFixed(2)}x` : '-';

const V2_FORM_TITLES: Record<V2Form, string> = { json: 'JSON', binary: 'binary' };

function v2Columns(results: Pick<Results, 'v2' | 'settings'>): {
  groups: Group[];
  cols: Column<V2Row>[];
  rows: V2Row[];
} {
  const cell = (form: V2Form, r: V2Row): V2Cell | undefined => findV2Cell(results, r.model, form, r.concurrency);
  const groups: Group[] = [{ title: '', span: 2 }];
  const cols: Column<V2Row>[] = [
    { header: 'model', right: false, value: (r) => r.model },
    { header: 'c', right: true, value: (r) => String(r.concurrency) },
  ];
  for (const form of V2_FORMS) {
    groups.push({ title: V2_FORM_TITLES[form], span: 6 });
    cols.push(
      { header: 'body', right: true, value: (r) => fmtBytes(cell(form, r)?.body_bytes) },
      { header: 'req/s', right: true, value: (r) => fmtRate(cell(form, r)?.req_per_s) },
      { header: 'CPU ms/req', right: true, value: (r) => fmtMs(cell(form, r)?.cpu_ms_per_request ?? undefined) },
      { header: 'p50', right: true, value: (r) => fmtMs(cell(form, r)?.p50_ms) },
      { header: 'p99', right: true, value: (r) => fmtMs(cell(form, r)?.p99_ms) },
      { header: 'err', right: true, value: (r) => (cell(form, r) ? String(cell(form, r)?.errors) : '-') },
    );
  }
  groups.push({ title: 'binary vs JSON ratios', span: 2 });
  cols.push(
    {
      header: 'req/s bin/json',
      right: true,
      value: (r) => fmtFactor(cell('binary', r)?.req_per_s, cell('json', r)?.req_per_s),
    },
    {
      header: 'CPU/req json/bin',
      right: true,
      value: (r) => fmtFactor(cell('json', r)?.cpu_ms_per_request, cell('binary', r)?.cpu_ms_per_request),
    },
  );
  const concurrencies = results.settings.v2_concurrencies ?? [];
  const rows = V2_MODELS.flatMap((model) => concurrencies.map((concurrency) => ({ model, concurrency })));
  return { groups, cols, rows };
}

/** The V2 table for the terminal; empty when no V2 cell was measured. */
export function v2TextTable(results: Pick<Results, 'v2' | 'settings'>): string {
  if (!results.v2?.length) return '';
  const { groups, cols, rows } = v2Columns(results);
  return groupedText(groups, cols, rows, (a, b) => a.model !== b.model);
}

/** The same in markdown; empty when no V2 cell was measured. */
export function markdownV2Table(results: Pick<Results, 'v2' | 'settings'>): string {
  if (!results.v2?.length) return '';
  const { groups, cols, rows } = v2Columns(results);
  return groupedMarkdown(groups, cols, rows);
}

/** The isolation cells: one row per load (the measured one, then the fault beside it). */
const ISOLATION_HEADERS = ['cell', 'load', 'c', 'answers', 'statuses', 'req/s', 'CPU µs', 'p50', 'p99', 'max'];

const answers = (l: IsolationLoad): number => Object.values(l.statuses ?? {}).reduce((a, b) => a + b, 0);
const fmtStatuses = (l: IsolationLoad): string =>
  Object.entries(l.statuses ?? {})
    .sort(([a], [b]) => Number(a) - Number(b))
    .map(([status, n]) => `${status}: ${n}`)
    .join(', ') || '-';

function isolationRows(results: Pick<Results, 'isolation'>): string[][] {
  const cells = (results.isolation ?? [])
    .slice()
    .sort((a, b) => ISOLATION_CELL_IDS.indexOf(a.id) - ISOLATION_CELL_IDS.indexOf(b.id));
  return cells.flatMap((c) =>
    [c.measured, c.fault].map((l, i) => [
      i === 0 ? c.id : '',
      l.role,
      String(l.concurrency),
      String(answers(l)),
      fmtStatuses(l),
      fmtRate(l.req_per_s),
      fmtUs(l.cpu_us_per_request),
      fmtMs(l.p50_ms),
      fmtMs(l.p99_ms),
      fmtMs(l.max_ms),
    ]),
  );
}

/** The isolation table for the terminal; empty when no isolation cell was measured. */
export function isolationTextTable(results: Pick<Results, 'isolation'>): string {
  const rows = isolationRows(results);
  if (!rows.length) return '';
  const right = (i: number): boolean => i >= 2 && i !== 4;
  const widths = ISOLATION_HEADERS.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (values: string[]): string =>
    values.map((v, i) => (right(i) ? v.padStart(widths[i]) : v.padEnd(widths[i]))).join('  ');
  const header = line(ISOLATION_HEADERS);
  return [header, '-'.repeat(header.length), ...rows.map(line)].join('\n');
}

/** The same in markdown; empty when no isolation cell was measured. */
export function markdownIsolationTable(results: Pick<Results, 'isolation'>): string {
  const rows = isolationRows(results);
  if (!rows.length) return '';
  return [
    `| ${ISOLATION_HEADERS.join(' | ')} |`,
    `|${ISOLATION_HEADERS.map((_, i) => (i >= 2 && i !== 4 ? '---:' : '---')).join('|')}|`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ].join('\n');
}

const rate = (c: Cell): string =>
  `${fmtRate(c.req_per_s)} req/s` +
  (c.cpu_us_per_request == null ? '' : ` (${fmtUs(c.cpu_us_per_request)} µs CPU/req)`);
const errorsNote = (...cells: Cell[]): string => {
  const bad = cells
    .filter((c) => c.errors > 0)
    .map((c) => `${TARGETS[c.target].short} c=${c.concurrency}: ${c.errors} errors`);
  return bad.length ? ` [${bad.join('; ')}]` : '';
};

/**
 * The targets the service is held to. Each is evaluated on this run only; a target whose cells were not
 * measured (the lesson skipped, or a concurrency left out) is SKIP rather than FAIL.
 */
export function evaluate(results: Pick<Results, 'cells' | 'rss' | 'v2' | 'isolation'>): Evaluation[] {
  const out: Evaluation[] = [];
  const get = (model: ModelName, target: TargetId, c: number): Cell | undefined =>
    findCell(results, model, 'single', target, c);

  {
    const title =
      '(a) iris, single: service (batching on) >= 0.5x baseline req/s at c=32, and p50 at c=1 <= 2x the baseline p50';
    const on32 = get('iris', 'on', 32);
    const base32 = get('iris', 'baseline', 32);
    const on1 = get('iris', 'on', 1);
    const base1 = get('iris', 'baseline', 1);
    if (!on32 || !base32 || !on1 || !base1) out.push({ id: 'a', title, status: 'SKIP', detail: 'cells not measured' });
    else {
      const ratio = on32.req_per_s / base32.req_per_s;
      const p50 = on1.p50_ms / base1.p50_ms;
      out.push({
        id: 'a',
        title,
        status: ratio >= 0.5 && p50 <= 2 ? 'PASS' : 'FAIL',
        detail:
          `c=32: on ${rate(on32)} vs baseline ${rate(base32)} = ${ratio.toFixed(2)}x (need >= 0.50x); ` +
          `c=1 p50: on ${fmtMs(on1.p50_ms)} ms vs ${fmtMs(base1.p50_ms)} ms = ${p50.toFixed(2)}x (need <= 2.00x)` +
          errorsNote(on32, base32, on1, base1),
      });
    }
  }
  {
    const title = '(b) mlp, single, c=32: service (batching on) >= 1.5x baseline req/s, and p99 <= baseline p99';
    const on = get('mlp', 'on', 32);
    const base = get('mlp', 'baseline', 32);
    if (!on || !base) out.push({ id: 'b', title, status: 'SKIP', detail: 'cells not measured' });
    else {
      const ratio = on.req_per_s / base.req_per_s;
      out.push({
        id: 'b',
        title,
        status: ratio >= 1.5 && on.p99_ms <= base.p99_ms ? 'PASS' : 'FAIL',
        detail:
          `on ${rate(on)} vs baseline ${rate(base)} = ${ratio.toFixed(2)}x (need >= 1.50x); ` +
          `p99 ${fmtMs(on.p99_ms)} ms vs ${fmtMs(base.p99_ms)} ms (need <=)${errorsNote(on, base)}`,
      });
    }
  }
  {
    const title = '(c) digits, single, c=32: service (batching on) >= 4x baseline req/s';
    const on = get('digits', 'on', 32);
    const base = get('digits', 'baseline', 32);
    if (!on || !base) out.push({ id: 'c', title, status: 'SKIP', detail: 'cells not measured' });
    else {
      const ratio = on.req_per_s / base.req_per_s;
      out.push({
        id: 'c',
        title,
        status: ratio >= 4 ? 'PASS' : 'FAIL',
        detail: `on ${rate(on)} vs baseline ${rate(base)} = ${ratio.toFixed(2)}x (need >= 4.00x)${errorsNote(on, base)}`,
      });
    }
  }
  {
    const title = '(d) iris, single, c=32: service (batching on) >= 5x the lesson FastAPI req/s';
    const on = get('iris', 'on', 32);
    const lesson = get('iris', 'lesson', 32);
    if (!on || !lesson)
      out.push({
        id: 'd',
        title,
        status: 'SKIP',
        detail: lesson ? 'cells not measured' : 'lesson service not measured in this run',
      });
    else {
      const ratio = on.req_per_s / lesson.req_per_s;
      out.push({
        id: 'd',
        title,
        status: ratio >= 5 ? 'PASS' : 'FAIL',
        detail: `on ${rate(on)} vs lesson ${rate(lesson)} = ${ratio.toFixed(2)}x (need >= 5.00x)${errorsNote(on, lesson)}`,
      });
    }
  }
  out.push(...evaluateIsolation(results));
  {
    const title =
      '(f) digits, single: batching on >= 2x batching off req/s at c=32, and p50 at c=1 at most 1 ms above off';
    const on32 = get('digits', 'on', 32);
    const off32 = get('digits', 'off', 32);
    const on1 = get('digits', 'on', 1);
    const off1 = get('digits', 'off', 1);
    if (!on32 || !off32 || !on1 || !off1) out.push({ id: 'f', title, status: 'SKIP', detail: 'cells not measured' });
    else {
      const ratio = on32.req_per_s / off32.req_per_s;
      const delta = on1.p50_ms - off1.p50_ms;
      const ok = ratio >= 2 && delta <= 1;
      out.push({
        id: 'f',
        title,
        status: ok ? 'PASS' : 'FAIL',
        detail:
          `c=32: on ${rate(on32)} vs off ${rate(off32)} = ${ratio.toFixed(2)}x (need >= 2.00x); ` +
          `c=1 p50: on ${fmtMs(on1.p50_ms)} ms vs off ${fmtMs(off1.p50_ms)} ms = ${delta >= 0 ? '+' : ''}${delta.toFixed(2)} ms (need <= +1 ms)` +
          errorsNote(on32, off32, on1, off1),
      });
    }
  }
  {
    const title = '(g) digits, single, c=32: cached (the same bodies again) >= 1.5x the uncached service req/s';
    const cached = get('digits', 'cached', 32);
    const on = get('digits', 'on', 32);
    if (!cached || !on) out.push({ id: 'g', title, status: 'SKIP', detail: 'cells not measured' });
    else {
      const ratio = cached.req_per_s / on.req_per_s;
      out.push({
        id: 'g',
        title,
        status: ratio >= 1.5 ? 'PASS' : 'FAIL',
        detail: `cached ${rate(cached)} vs on ${rate(on)} = ${ratio.toFixed(2)}x (need >= 1.50x)${errorsNote(cached, on)}`,
      });
    }
  }
  {
    const rss: RssResult | null = results.rss;
    const title = rss
      ? `(h) memory: service RSS after ${rss.total_requests} requests within 20% of RSS after ${rss.first_requests}`
      : '(h) memory: service RSS after N requests within 20% of RSS after N/10';
    if (!rss)
      out.push({ id: 'h', title, status: 'SKIP', detail: 'RSS not measured (left out by BENCH_ONLY, or no /proc)' });
    else {
      const ok = Math.abs(rss.ratio - 1) <= 0.2;
      out.push({
        id: 'h',
        title,
        status: ok ? 'PASS' : 'FAIL',
        detail:
          `${(rssCompared(rss, 'first') / 1024).toFixed(1)} MB -> ${(rssCompared(rss, 'total') / 1024).toFixed(1)} MB = ${rss.ratio.toFixed(3)}x (need 0.80x..1.20x)` +
          (rss.rss_first_low_kb === undefined ? '' : ' (lowest over the second half of each phase)') +
          (rss.errors ? ` [${rss.errors} errors]` : ''),
      });
    }
  }
  {
    const title = '(i) V2 image, c=8: binary tensors >= 5x JSON req/s';
    const binary = findV2Cell(results, 'image', 'binary', 8);
    const json = findV2Cell(results, 'image', 'json', 8);
    if (!binary || !json) out.push({ id: 'i', title, status: 'SKIP', detail: 'cells not measured' });
    else {
      const ratio = binary.req_per_s / json.req_per_s;
      const cpu = (c: V2Cell): string =>
        c.cpu_ms_per_request === null ? 'CPU not measured' : `${fmtMs(c.cpu_ms_per_request)} ms CPU/req`;
      const bad = [binary, json].filter((c) => c.errors > 0).map((c) => `${c.form}: ${c.errors} errors`);
      out.push({
        id: 'i',
        title,
        // No JSON answers at all makes any ratio infinite: that is a failed cell, not a pass.
        status: json.req_per_s > 0 && ratio >= 5 ? 'PASS' : 'FAIL',
        detail:
          `binary ${fmtRate(binary.req_per_s)} req/s (${cpu(binary)}) vs JSON ${fmtRate(json.req_per_s)} req/s ` +
          `(${cpu(json)}) = ${ratio.toFixed(2)}x (need >= 5.00x)${bad.length ? ` [${bad.join('; ')}]` : ''}`,
      });
    }
  }
  return out;
}

/**
 * (e): the isolation cells. Only the measured load's answers count; an answer of any status but the
 * ones allowed fails the target, as does a cell with no answers at all.
 */
function evaluateIsolation(results: Pick<Results, 'isolation'>): Evaluation[] {
  const find = (id: IsolationCell['id']): IsolationCell | undefined =>
    (results.isolation ?? []).find((c) => c.id === id);
  const out: Evaluation[] = [];
  {
    const title =
      `(e1) isolation, gather: ${POISON_GOOD_CLIENTS} clients sending good indices beside ${POISON_BAD_CLIENTS} sending a failing one: ` +
      `>= ${(POISON_MIN_OK * 100).toFixed(1)}% of the good requests answer 200`;
    const cell = find('poison');
    if (!cell) out.push({ id: 'e1', title, status: 'SKIP', detail: 'cells not measured' });
    else {
      const good = cell.measured;
      const total = answers(good) + good.error_detail.errors + good.error_detail.timeouts;
      const ok = good.statuses?.['200'] ?? 0;
      const share = total > 0 ? ok / total : 0;
      out.push({
        id: 'e1',
        title,
        status: total > 0 && share >= POISON_MIN_OK ? 'PASS' : 'FAIL',
        detail:
          `${ok} of ${total} good requests answered 200 = ${(share * 100).toFixed(2)}% (need >= ${(POISON_MIN_OK * 100).toFixed(1)}%); ` +
          `good: ${fmtStatuses(good)}; failing index: ${fmtStatuses(cell.fault)}` +
          (good.error_detail.errors + good.error_detail.timeouts
            ? ` [${good.error_detail.errors} connection errors, ${good.error_detail.timeouts} timeouts]`
            : ''),
      });
    }
  }
  {
    const title =
      `(e2) isolation, deadline: ${DEADLINE_CLIENTS} iris clients with X-Request-Timeout-Ms: ${DEADLINE_MS} beside one keeping the slow fixture busy: ` +
      `p99 <= ${DEADLINE_BOUND_MS} ms, every answer 200 or 504`;
    const cell = find('deadline');
    if (!cell) out.push({ id: 'e2', title, status: 'SKIP', detail: 'cells not measured' });
    else {
      const iris = cell.measured;
      const total = answers(iris);
      const allowed = (iris.statuses?.['200'] ?? 0) + (iris.statuses?.['504'] ?? 0);
      const lost = iris.error_detail.errors + iris.error_detail.timeouts;
      const slowRuns = cell.fault.statuses?.['200'] ?? 0;
      out.push({
        id: 'e2',
        title,
        status: total > 0 && allowed === total && lost === 0 && iris.p99_ms <= DEADLINE_BOUND_MS ? 'PASS' : 'FAIL',
        detail:
          `iris p99 ${fmtMs(iris.p99_ms)} ms, max ${fmtMs(iris.max_ms)} ms (need p99 <= ${DEADLINE_BOUND_MS} ms); ` +
          `${total} answers: ${fmtStatuses(iris)}` +
          (lost ? ` [${iris.error_detail.errors} connection errors, ${iris.error_detail.timeouts} timeouts]` : '') +
          `; the slow fixture answered ${slowRuns} runs in the cell (${fmtStatuses(cell.fault)})`,
      });
    }
  }
  return out;
}
