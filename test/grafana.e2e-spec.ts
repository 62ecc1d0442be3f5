import { INestApplication } from '@nestjs/common';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import request from 'supertest';
import { ROOT, startApp } from './support/app';

/**
 * The Grafana dashboard (deploy/grafana) checked against the service: well-formed, and every metric
 * name its queries use is one this service exposes at GET /metrics.
 */

type Target = { expr?: string; refId?: string; datasource?: { uid?: string } };
type Panel = {
  id?: number;
  type?: string;
  title?: string;
  gridPos?: { h: number; w: number; x: number; y: number };
  targets?: Target[];
  fieldConfig?: { defaults?: { unit?: string } };
};
type Variable = { name: string; type: string; query?: string | { query?: string } };
type Dashboard = { title?: string; schemaVersion?: number; panels?: Panel[]; templating?: { list?: Variable[] } };

const FILE = path.join(ROOT, 'deploy', 'grafana', 'onnx-inference-dashboard.json');
const dashboard = JSON.parse(readFileSync(FILE, 'utf8')) as Dashboard;
const panels = dashboard.panels ?? [];
const variables = dashboard.templating?.list ?? [];

/** PromQL functions, aggregations, keywords and modifiers: identifiers that are not metric names. */
const PROMQL_WORDS = new Set([
  'sum',
  'avg',
  'min',
  'max',
  'count',
  'stddev',
  'stdvar',
  'topk',
  'bottomk',
  'quantile',
  'count_values',
  'group',
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'and',
  'or',
  'unless',
  'bool',
  'offset',
  'rate',
  'irate',
  'increase',
  'delta',
  'idelta',
  'deriv',
  'resets',
  'changes',
  'histogram_quantile',
  'abs',
  'clamp_min',
  'clamp_max',
  'vector',
  'scalar',
  'time',
  'absent',
  'label_replace',
  'label_join',
  'label_values',
  'le',
  'inf',
  'nan',
  'avg_over_time',
  'max_over_time',
  'min_over_time',
  'sum_over_time',
  'quantile_over_time',
  'predict_linear',
]);

/**
 * Metric names in one PromQL expression: drops string literals, label matchers `{...}`, ranges
 * `[...]`, grouping clauses `by (...)` and Grafana variables, then keeps every identifier that is
 * not a function call or PromQL word.
 */
function metricNames(expr: string): string[] {
  const stripped = expr
    .replace(/"(\\.|[^"\\])*"/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\$\{?\w+\}?/g, ' ');
  const names: string[] = [];
  for (const m of stripped.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\()?/g)) {
    if (m[2] || PROMQL_WORDS.has(m[1].toLowerCase())) continue;
    names.push(m[1]);
  }
  return names;
}

/** Metric names in a query variable: `label_values(<selector>, <label>)` → the selector's metric. */
function variableMetric(query: string): { metric: string; label: string } | undefined {
  const m = /^label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\{[^}]*\})?\s*,\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)$/.exec(
    query.trim(),
  );
  return m ? { metric: m[1], label: m[3] } : undefined;
}
const queryOf = (v: Variable) => (typeof v.query === 'string' ? v.query : (v.query?.query ?? ''));

const targets = panels.flatMap((p) => p.targets ?? []);
const exprs = targets.map((t) => t.expr ?? '');
const usedMetrics = [...new Set(exprs.flatMap(metricNames))].sort();

describe('Grafana dashboard (deploy/grafana/onnx-inference-dashboard.json)', () => {
  it('is a dashboard with a title, schemaVersion 39 and panels with unique ids and grid positions', () => {
    expect(dashboard.title).toEqual(expect.any(String));
    expect(dashboard.schemaVersion).toBe(39);
    expect(panels.length).toBeGreaterThan(0);
    const ids = panels.map((p) => p.id);
    for (const id of ids) expect(id).toEqual(expect.any(Number));
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of panels) {
      expect(p.title).toEqual(expect.any(String));
      expect(p.gridPos).toEqual({
        h: expect.any(Number),
        w: expect.any(Number),
        x: expect.any(Number),
        y: expect.any(Number),
      });
      expect(p.gridPos!.x + p.gridPos!.w).toBeLessThanOrEqual(24);
    }
  });

  it('has the datasource, model and version template variables', () => {
    const byName = new Map(variables.map((v) => [v.name, v]));
    expect(byName.get('datasource')).toMatchObject({ type: 'datasource', query: 'prometheus' });
    for (const name of ['model', 'version']) {
      const v = byName.get(name);
      expect(v).toMatchObject({ type: 'query' });
      expect(variableMetric(queryOf(v!))).toEqual({ metric: 'inference_request_success_total', label: name });
    }
  });

  it('queries through the datasource variable, with a unit on every graph', () => {
    expect(targets.length).toBeGreaterThan(0);
    for (const t of targets) {
      expect(t.expr).toEqual(expect.any(String));
      expect(t.datasource?.uid).toBe('${datasource}');
    }
    for (const p of panels.filter((p) => p.type !== 'row')) {
      expect(p.targets?.length).toBeGreaterThan(0);
      expect(p.fieldConfig?.defaults?.unit).toEqual(expect.any(String));
    }
  });

  it('extracts the metric names from its queries, leaving out PromQL functions and keywords', () => {
    expect(
      metricNames(
        'histogram_quantile(0.99, sum by (le, route) (rate(http_request_duration_seconds_bucket{a="b(c)"}[$__rate_interval])))',
      ),
    ).toEqual(['http_request_duration_seconds_bucket']);
    expect(metricNames('sum(rate(x_sum[5m])) / sum(rate(x_count[5m]))')).toEqual(['x_sum', 'x_count']);
    expect(metricNames('process_resident_memory_bytes')).toEqual(['process_resident_memory_bytes']);
    expect(usedMetrics).toEqual(
      expect.arrayContaining([
        'inference_request_success_total',
        'inference_request_failure_total',
        'inference_request_duration_seconds_bucket',
        'inference_queue_duration_seconds_bucket',
        'inference_compute_duration_seconds_bucket',
        'inference_batch_size_sum',
        'inference_batch_size_count',
        'inference_pending_requests',
        'http_requests_total',
        'http_request_duration_seconds_bucket',
        'nodejs_eventloop_lag_seconds',
        'process_resident_memory_bytes',
        'nodejs_heap_size_used_bytes',
      ]),
    );
  });

  describe('against the running service', () => {
    let app: INestApplication;
    let types: Map<string, string>;
    let samples: Map<string, Set<string>>;

    beforeAll(async () => {
      app = await startApp();
      const http = app.getHttpServer();
      await request(http)
        .post('/v1/models/iris/predict')
        .send({ features: [5.1, 3.5, 1.4, 0.2] })
        .expect(200);
      const res = await request(http).get('/metrics').expect(200);
      types = new Map();
      samples = new Map();
      for (const line of res.text.split('\n')) {
        const type = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (\w+)$/.exec(line);
        if (type) types.set(type[1], type[2]);
        const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? /.exec(line);
        if (sample) samples.set(sample[1], (samples.get(sample[1]) ?? new Set()).add(sample[2] ?? ''));
      }
    });
    afterAll(() => app?.close());

    /** Exposed as a declared metric, a sample, or a histogram's _bucket/_sum/_count series. */
    const exposed = (name: string) => {
      if (types.has(name) || samples.has(name)) return true;
      const base = /^(.*)_(bucket|sum|count)$/.exec(name)?.[1];
      return base !== undefined && types.get(base) === 'histogram';
    };

    it.each(usedMetrics)('exposes %s', (name) => {
      expect(exposed(name)).toBe(true);
    });

    it('exposes the variables’ metric with their labels', () => {
      for (const v of variables.filter((v) => v.type === 'query')) {
        const { metric, label } = variableMetric(queryOf(v))!;
        expect(exposed(metric)).toBe(true);
        expect([...(samples.get(metric) ?? [])].some((labels) => labels.includes(`${label}="`))).toBe(true);
      }
    });
  });
});
