import { INestApplication } from '@nestjs/common';
import { spawnSync } from 'node:child_process';
import request from 'supertest';
import { GAUGES_NAMED_LIKE_COUNTERS } from '../src/observability/metrics.service';
import { startApp } from './support/app';
import { onPath } from './support/process';

/** Prometheus' own linter (Debian: apt-get install prometheus), when on PATH; .ci/run installs it. */
const PROMTOOL = onPath('promtool');

/**
 * The exposition format's sample line: name, optional labels, a value (and an optional timestamp).
 * Values are Go floats, so NaN and Inf are case-insensitive (prom-client writes "Nan").
 */
const SAMPLE =
  /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*",?)*\})? (-?[0-9.e+-]+|[Nn][Aa][Nn]|[+-][Ii]nf)( -?\d+)?$/;
const COMMENT = /^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .+$/;

/** Parses Prometheus text into `name{labels}` → value, failing on any line that is not well formed. */
function parse(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    if (line.startsWith('#')) {
      expect(line).toMatch(COMMENT);
      continue;
    }
    expect(line).toMatch(SAMPLE);
    const at = line.lastIndexOf(' ');
    samples.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return samples;
}

describe('GET /metrics', () => {
  let app: INestApplication;
  let http: ReturnType<INestApplication['getHttpServer']>;
  const scrape = async () => {
    const res = await request(http).get('/metrics').expect(200);
    // Express moves the charset forward; both orders are the same media type.
    expect(res.headers['content-type']).toMatch(/^text\/plain;.*version=0\.0\.4/);
    return parse(res.text);
  };
  const value = (m: Map<string, number>, key: string) => m.get(key) ?? 0;

  beforeAll(async () => {
    app = await startApp();
    http = app.getHttpServer();
  });
  afterAll(() => app.close());

  it('is Prometheus text with the service, inference and process metrics', async () => {
    const m = await scrape();
    const names = [...m.keys()].map((k) => k.split('{')[0]);
    for (const name of [
      'process_resident_memory_bytes',
      'nodejs_eventloop_lag_seconds',
      'nodejs_heap_size_used_bytes',
    ]) {
      expect(names).toContain(name);
    }
    expect(m.get('inference_queue_depth{model="iris",version="1"}')).toBe(0);
    expect(m.get('inference_pending_requests{model="iris",version="1"}')).toBe(0);
  });

  it('moves as traffic flows: requests, failures by code, runs, batch sizes, latencies, cache hits and misses', async () => {
    const before = await scrape();
    // Three identical requests: one computed, two from the cache; then a batch with one cached row and one new.
    for (let i = 0; i < 3; i++)
      await request(http)
        .post('/v1/models/iris/predict')
        .send({ features: [5.1, 3.5, 1.4, 0.2] })
        .expect(200);
    await request(http)
      .post('/v1/models/iris/predict/batch')
      .send({
        instances: [
          [5.1, 3.5, 1.4, 0.2],
          [6.3, 3.3, 6.0, 2.5],
        ],
      })
      .expect(200);
    await request(http)
      .post('/v1/models/iris/predict')
      .send({ features: [1, 2] })
      .expect(400);
    await request(http).get('/no/such/route').expect(404);
    const after = await scrape();
    const delta = (key: string) => value(after, key) - value(before, key);

    expect(delta('inference_request_success_total{model="iris",version="1"}')).toBe(4);
    // Triton's reason for a request refused before it reached the model, beside the service's own code.
    expect(delta('inference_request_failure_total{model="iris",version="1",reason="OTHER",code="INVALID_INPUT"}')).toBe(
      1,
    );
    expect(delta('inference_request_duration_seconds_count{model="iris",version="1"}')).toBe(4);
    expect(delta('inference_cache_hits_total{model="iris",version="1"}')).toBe(3);
    expect(delta('inference_cache_misses_total{model="iris",version="1"}')).toBe(2);
    expect(value(after, 'inference_cache_entries')).toBeGreaterThanOrEqual(2);
    // Only the two computed rows reached the model, in two runs of one row.
    expect(delta('inference_count_total{model="iris",version="1"}')).toBe(2);
    expect(delta('inference_exec_count_total{model="iris",version="1"}')).toBe(2);
    expect(delta('inference_batch_size_count{model="iris",version="1"}')).toBe(2);
    expect(delta('inference_batch_size_sum{model="iris",version="1"}')).toBe(2);
    expect(delta('inference_queue_duration_seconds_count{model="iris",version="1"}')).toBe(2);
    expect(delta('inference_compute_duration_seconds_count{model="iris",version="1"}')).toBe(2);
    expect(delta('http_requests_total{method="POST",route="/v1/models/:model/predict",status="200"}')).toBe(3);
    expect(delta('http_requests_total{method="POST",route="/v1/models/:model/predict",status="400"}')).toBe(1);
    expect(delta('http_requests_total{method="GET",route="unmatched",status="404"}')).toBe(1);
    expect(
      delta('http_request_duration_seconds_count{method="POST",route="/v1/models/:model/predict/batch",status="200"}'),
    ).toBe(1);
  });

  it('passes promtool check metrics after traffic, with no gauge named like a counter', async () => {
    const res = await request(http).get('/metrics').expect(200);
    const names = new Set(
      res.text
        .split('\n')
        .filter((line) => line.startsWith('# TYPE '))
        .map((line) => line.split(' ')[2]),
    );
    for (const name of GAUGES_NAMED_LIKE_COUNTERS) expect(names.has(name)).toBe(false);
    // The per-type gauges they summed are still there.
    expect(names.has('nodejs_active_handles')).toBe(true);
    if (!PROMTOOL) {
      if (process.env.CI === 'true') throw new Error('promtool is not on PATH (Debian: apt-get install prometheus)');
      console.warn('SKIPPED promtool check metrics: promtool is not on PATH (Debian: apt-get install prometheus)');
      return;
    }
    const lint = spawnSync(PROMTOOL, ['check', 'metrics'], { input: res.text, encoding: 'utf8' });
    expect({ status: lint.status, output: `${lint.stdout}${lint.stderr}`.trim() }).toEqual({ status: 0, output: '' });
  });
});
