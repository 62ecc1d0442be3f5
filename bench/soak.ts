/**
 * Soak: holds a mix of good, bad and repeated (cacheable) requests against the built service for
 * SOAK_SECONDS (default 180), then reports requests, answers by status, unexpected answers, the
 * service's RSS at the start (after warm-up) and the end, and its event-loop lag. `npm run soak`.
 *
 * Settings (environment): SOAK_SECONDS (180), SOAK_CONCURRENCY (8 connections), SOAK_LOG_LEVEL
 * (warn: the service's per-request log lines would otherwise dominate its CPU on a small machine).
 * Exit code 0 when every answer was the one expected and RSS grew by less than 20 %; 1 otherwise.
 * Traffic goes only to the service it starts, on 127.0.0.1.
 */
import * as http from 'node:http';
import * as path from 'node:path';
import { Child, freePort, killAllNow, rssKb, startChild, stopChild, waitUntil } from './processes';

const ROOT = path.resolve(__dirname, '..');
const KEY = 'soak-key-0123456789abcdef';
const OK = [5.1, 3.5, 1.4, 0.2];

export interface SoakOptions {
  readonly seconds: number;
  readonly concurrency: number;
  /** `dist`: the build (as `npm start`); `src`: through ts-node, for the test suite. */
  readonly entry: 'dist' | 'src';
  readonly logLevel?: string;
  /** HTTP_ADAPTER for the service; the environment's (else the service's default) when absent. */
  readonly adapter?: 'express' | 'fastify';
  readonly log?: (line: string) => void;
}

export interface SoakReport {
  readonly seconds: number;
  readonly requests: number;
  readonly requestsPerSecond: number;
  /** Answers by HTTP status (0: no answer, a network error). */
  readonly byStatus: Record<string, number>;
  /** Answers by request kind and status. */
  readonly byKind: Record<string, Record<string, number>>;
  /** Answers other than the one each request was sent to get. */
  readonly unexpected: number;
  readonly unexpectedSamples: string[];
  readonly rssStartMb: number;
  readonly rssEndMb: number;
  readonly rssMaxMb: number;
  readonly rssGrowthPercent: number;
  readonly eventLoopLagMs: { p50: number; p99: number; max: number };
  /** Whether the service was still running and answering at the end. */
  readonly serviceAlive: boolean;
}

interface Kind {
  readonly name: string;
  readonly group: 'good' | 'cached' | 'bad';
  readonly weight: number;
  readonly expect: number;
  readonly request: (random: () => number) => {
    method: string;
    path: string;
    body?: string;
    headers?: Record<string, string>;
  };
}

const AUTH = { authorization: `Bearer ${KEY}` };
const JSON_AUTH = { ...AUTH, 'content-type': 'application/json' };
const row = (random: () => number, n: number, scale: number) =>
  Array.from({ length: n }, () => Math.round(random() * scale * 100) / 100);
const post = (p: string, body: unknown, headers: Record<string, string> = JSON_AUTH) => ({
  method: 'POST',
  path: p,
  body: typeof body === 'string' ? body : JSON.stringify(body),
  headers,
});

const KINDS: Kind[] = [
  // Good: fresh values every time.
  {
    name: 'v1 predict iris',
    group: 'good',
    weight: 20,
    expect: 200,
    request: (r) => post('/v1/models/iris/predict', { features: row(r, 4, 7) }),
  },
  {
    name: 'v1 batch iris (8)',
    group: 'good',
    weight: 8,
    expect: 200,
    request: (r) => post('/v1/models/iris/predict/batch', { instances: Array.from({ length: 8 }, () => row(r, 4, 7)) }),
  },
  {
    name: 'v1 predict digits',
    group: 'good',
    weight: 6,
    expect: 200,
    request: (r) => post('/v1/models/digits/predict', { features: row(r, 64, 16) }),
  },
  {
    name: 'v2 infer iris',
    group: 'good',
    weight: 10,
    expect: 200,
    request: (r) =>
      post('/v2/models/iris/infer', {
        inputs: [{ name: 'float_input', shape: [2, 4], datatype: 'FP32', data: [...row(r, 4, 7), ...row(r, 4, 7)] }],
      }),
  },
  {
    name: 'lesson /predict',
    group: 'good',
    weight: 6,
    expect: 200,
    request: (r) => post('/predict', { features: row(r, 4, 7) }),
  },
  {
    name: 'model metadata',
    group: 'good',
    weight: 4,
    expect: 200,
    request: () => ({ method: 'GET', path: '/v1/models/iris', headers: AUTH }),
  },
  {
    name: 'probe ready',
    group: 'good',
    weight: 2,
    expect: 200,
    request: () => ({ method: 'GET', path: '/health/ready' }),
  },
  // Repeated: the same request over and over, what a prediction cache would answer.
  {
    name: 'repeated v1 predict',
    group: 'cached',
    weight: 14,
    expect: 200,
    request: () => post('/v1/models/iris/predict', { features: OK }),
  },
  {
    name: 'repeated v2 infer',
    group: 'cached',
    weight: 6,
    expect: 200,
    request: () =>
      post('/v2/models/iris/infer', { inputs: [{ name: 'float_input', shape: [1, 4], datatype: 'FP32', data: OK }] }),
  },
  // Bad on purpose, each with the answer it must get.
  {
    name: 'no API key',
    group: 'bad',
    weight: 3,
    expect: 401,
    request: () => post('/v1/models/iris/predict', { features: OK }, { 'content-type': 'application/json' }),
  },
  {
    name: 'wrong API key',
    group: 'bad',
    weight: 2,
    expect: 401,
    request: () =>
      post(
        '/v1/models/iris/predict',
        { features: OK },
        { 'content-type': 'application/json', 'x-api-key': 'not-the-key-0123456789' },
      ),
  },
  {
    name: 'invalid input',
    group: 'bad',
    weight: 3,
    expect: 400,
    request: (r) => post('/v1/models/iris/predict', { features: row(r, 3, 7) }),
  },
  {
    name: 'malformed JSON',
    group: 'bad',
    weight: 2,
    expect: 400,
    request: () => post('/v1/models/iris/predict', '{"features":[5.1,'),
  },
  {
    name: 'prototype key',
    group: 'bad',
    weight: 2,
    expect: 400,
    request: () => post('/v1/models/iris/predict', '{"features":[5.1,3.5,1.4,0.2],"__proto__":{"polluted":1}}'),
  },
  {
    name: 'deep JSON',
    group: 'bad',
    weight: 1,
    expect: 400,
    request: () => post('/v1/models/iris/predict', `{"features":${'['.repeat(2000)}${']'.repeat(2000)}}`),
  },
  {
    name: 'unknown model',
    group: 'bad',
    weight: 2,
    expect: 404,
    request: () => post('/v1/models/nope/predict', { features: OK }),
  },
  {
    name: 'path traversal',
    group: 'bad',
    weight: 1,
    expect: 404,
    request: () => post('/v1/models/..%2F..%2Fetc/predict', { features: OK }),
  },
  {
    name: 'unknown route',
    group: 'bad',
    weight: 2,
    expect: 404,
    request: () => ({ method: 'GET', path: '/nowhere', headers: AUTH }),
  },
  {
    name: 'not JSON',
    group: 'bad',
    weight: 1,
    expect: 415,
    request: () => post('/v1/models/iris/predict', 'features=1', { ...AUTH, 'content-type': 'text/plain' }),
  },
  {
    name: 'body over BODY_LIMIT',
    group: 'bad',
    weight: 1,
    expect: 413,
    request: () => post('/v1/models/iris/predict/batch', { instances: new Array(6000).fill(OK) }),
  },
];

/** A small seeded generator (mulberry32), so every soak sends the same sequence. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function send(
  agent: http.Agent,
  port: number,
  req: { method: string; path: string; body?: string; headers?: Record<string, string> },
): Promise<number> {
  return new Promise((resolve) => {
    const outgoing = http.request(
      { host: '127.0.0.1', port, agent, method: req.method, path: req.path, headers: req.headers },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', () => resolve(0));
      },
    );
    outgoing.on('error', () => resolve(0));
    outgoing.end(req.body);
  });
}

function get(port: number, p: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: p, agent: false }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      })
      .on('error', reject);
  });
}

/** The event-loop lag of the service since the previous scrape (prom-client resets it on each). */
async function eventLoopLag(port: number): Promise<{ p50: number; p99: number; max: number }> {
  const { text } = await get(port, '/metrics');
  const value = (name: string) => Number(new RegExp(`^${name} (\\S+)`, 'm').exec(text)?.[1] ?? NaN) * 1000;
  return {
    p50: value('nodejs_eventloop_lag_p50_seconds'),
    p99: value('nodejs_eventloop_lag_p99_seconds'),
    max: value('nodejs_eventloop_lag_max_seconds'),
  };
}

const mb = (kb: number | null) => Math.round(((kb ?? 0) / 1024) * 10) / 10;

export async function runSoak(options: SoakOptions): Promise<SoakReport> {
  const log = options.log ?? ((line: string) => console.log(line));
  const port = await freePort();
  const args = options.entry === 'dist' ? ['dist/main.js'] : ['-r', 'ts-node/register/transpile-only', 'src/main.ts'];
  const service: Child = startChild('service', process.execPath, args, {
    cwd: ROOT,
    env: {
      ...process.env,
      ...(options.adapter ? { HTTP_ADAPTER: options.adapter } : {}),
      PORT: String(port),
      HOST: '127.0.0.1',
      API_KEYS: KEY,
      BODY_LIMIT: '64kb',
      GRPC_PORT: '0',
      LOG_LEVEL: options.logLevel ?? 'warn',
      SHUTDOWN_GRACE_MS: '0',
    },
  });
  const agent = new http.Agent({ keepAlive: true, maxSockets: options.concurrency });
  try {
    await waitUntil(service, 'ready', 120000, async () => (await get(port, '/health/ready')).status === 200);
    log(
      `soak: service pid ${service.pid} ready on 127.0.0.1:${port}; ${options.seconds} s, ${options.concurrency} connections`,
    );

    const totalWeight = KINDS.reduce((sum, k) => sum + k.weight, 0);
    const byKind = new Map<string, Map<number, number>>();
    const samples: string[] = [];
    let requests = 0;
    let unexpected = 0;
    const rss: number[] = [];
    const warmup = Math.min(10, Math.max(1, options.seconds * 0.1)) * 1000;
    const started = Date.now();
    const end = started + options.seconds * 1000;
    let rssStart: number | null = null;
    let lagReset = false;

    const sampler = setInterval(() => {
      const now = rssKb(service.pid);
      if (now !== null) rss.push(now);
      if (rss.length % 10 === 0)
        log(
          `soak: ${Math.round((Date.now() - started) / 1000)} s, ${requests} requests, ${unexpected} unexpected, RSS ${mb(now)} MB`,
        );
      if (rssStart === null && Date.now() - started >= warmup) {
        rssStart = now;
        // The first scrape after warm-up resets the lag histogram, so the figures cover the soak itself.
        void eventLoopLag(port).then(
          () => (lagReset = true),
          () => undefined,
        );
      }
    }, 1000);

    const worker = async (id: number) => {
      const random = seeded(id + 1);
      while (Date.now() < end) {
        let pick = random() * totalWeight;
        const kind = KINDS.find((k) => (pick -= k.weight) < 0) ?? KINDS[0];
        const status = await send(agent, port, kind.request(random));
        requests++;
        const counts = byKind.get(kind.name) ?? new Map<number, number>();
        counts.set(status, (counts.get(status) ?? 0) + 1);
        byKind.set(kind.name, counts);
        if (status !== kind.expect) {
          unexpected++;
          if (samples.length < 10) samples.push(`${kind.name}: expected ${kind.expect}, got ${status || 'no answer'}`);
        }
      }
    };
    await Promise.all(Array.from({ length: options.concurrency }, (_, i) => worker(i)));
    clearInterval(sampler);
    const elapsed = (Date.now() - started) / 1000;

    const alive =
      !service.hasExited() &&
      (await get(port, '/health/live').then(
        (r) => r.status === 200,
        () => false,
      ));
    if (!alive)
      log(
        `soak: the service is not answering (${service.hasExited() ? await service.exited : 'still running'}); its last lines:\n${service.tail()}`,
      );
    const lag = lagReset && alive ? await eventLoopLag(port) : { p50: NaN, p99: NaN, max: NaN };
    const rssEnd = rssKb(service.pid) ?? rss.at(-1) ?? null;
    const startKb = rssStart ?? rss[0] ?? null;
    const byStatus: Record<string, number> = {};
    for (const counts of byKind.values())
      for (const [status, n] of counts) byStatus[status] = (byStatus[status] ?? 0) + n;
    const report: SoakReport = {
      seconds: Math.round(elapsed * 10) / 10,
      requests,
      requestsPerSecond: Math.round(requests / elapsed),
      byStatus,
      byKind: Object.fromEntries([...byKind].map(([name, counts]) => [name, Object.fromEntries(counts)])),
      unexpected,
      unexpectedSamples: samples,
      rssStartMb: mb(startKb),
      rssEndMb: mb(rssEnd),
      rssMaxMb: mb(Math.max(...rss, rssEnd ?? 0)),
      rssGrowthPercent: startKb && rssEnd ? Math.round(((rssEnd - startKb) / startKb) * 1000) / 10 : NaN,
      eventLoopLagMs: {
        p50: Math.round(lag.p50 * 100) / 100,
        p99: Math.round(lag.p99 * 100) / 100,
        max: Math.round(lag.max * 100) / 100,
      },
      serviceAlive: alive,
    };
    return report;
  } finally {
    agent.destroy();
    await stopChild(service);
  }
}

function print(report: SoakReport): void {
  const groups = new Map(KINDS.map((k) => [k.name, `${k.group}, expects ${k.expect}`]));
  console.log(`\nrequests: ${report.requests} in ${report.seconds} s (${report.requestsPerSecond}/s)`);
  console.log(`answers by status: ${JSON.stringify(report.byStatus)}`);
  for (const [name, counts] of Object.entries(report.byKind))
    console.log(`  ${name.padEnd(22)} (${groups.get(name)}): ${JSON.stringify(counts)}`);
  console.log(
    `unexpected answers: ${report.unexpected}${report.unexpectedSamples.length ? `\n  ${report.unexpectedSamples.join('\n  ')}` : ''}`,
  );
  console.log(
    `RSS: ${report.rssStartMb} MB after warm-up, ${report.rssEndMb} MB at the end (${report.rssGrowthPercent >= 0 ? '+' : ''}${report.rssGrowthPercent} %), ${report.rssMaxMb} MB at most`,
  );
  console.log(
    `event-loop lag: p50 ${report.eventLoopLagMs.p50} ms, p99 ${report.eventLoopLagMs.p99} ms, max ${report.eventLoopLagMs.max} ms`,
  );
  console.log(`service alive at the end: ${report.serviceAlive}`);
  console.log(JSON.stringify(report));
}

if (require.main === module) {
  process.on('exit', killAllNow);
  process.once('SIGINT', () => process.exit(130));
  const seconds = Number(process.env.SOAK_SECONDS ?? 180);
  const concurrency = Number(process.env.SOAK_CONCURRENCY ?? 8);
  if (!(seconds > 0) || !(concurrency >= 1)) {
    console.error('SOAK_SECONDS and SOAK_CONCURRENCY must be positive numbers');
    process.exit(1);
  }
  runSoak({ seconds, concurrency: Math.floor(concurrency), entry: 'dist', logLevel: process.env.SOAK_LOG_LEVEL })
    .then((report) => {
      print(report);
      const passed = report.unexpected === 0 && report.serviceAlive && report.rssGrowthPercent < 20;
      console.log(
        passed ? 'soak: PASS' : 'soak: FAIL (unexpected answers, a dead service, or RSS growth of 20 % or more)',
      );
      process.exit(passed ? 0 : 1);
    })
    .catch((err: Error) => {
      console.error(`soak: ${err.message}`);
      process.exit(1);
    });
}
