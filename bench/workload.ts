/**
 * What the bench sends and what it expects back: the request bodies (real rows from the models'
 * reference.json: scikit-learn's own predictions for iris and digits, a float64 forward pass for the
 * MLP fixture), each target's routes and answer shapes, and the correctness check every target must
 * pass before it is loaded.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { bundled, fixture, makeRepository } from '../src/testing/model-repository';

export const MODELS = ['iris', 'digits', 'mlp'] as const;
export type ModelName = (typeof MODELS)[number];
/**
 * Where each model's folder is, relative to the repository root: the bundled models, and the MLP
 * fixture (a 256-1024-1024-10 float network, test/fixtures/README.md), which the service does not serve
 * by default.
 */
export const MODEL_DIRS: Record<ModelName, string> = {
  iris: 'models/iris',
  digits: 'models/digits',
  mlp: 'test/fixtures/models/mlp',
};
/** A throw-away model repository with every model of MODELS, for the service targets. */
export const benchRepository = (): Promise<string> =>
  makeRepository({ iris: bundled('iris'), digits: bundled('digits'), mlp: fixture('mlp') });
export const ROUTES = ['single', 'batch'] as const;
export type Route = (typeof ROUTES)[number];
/** Instances per batch request. */
export const BATCH_SIZE = 16;
/**
 * Several different bodies per cell, cycled by every connection, so that no layer (ours or a future
 * cache) can answer the whole cell from one memorised response.
 */
const SINGLE_BODIES = 8;
const BATCH_BODIES = 4;

export type TargetId = 'on' | 'off' | 'express' | 'cached' | 'baseline' | 'lesson';
/** The canonical order: the order targets are run in, and of the table's column groups and the chart's legend. */
export const TARGET_IDS: readonly TargetId[] = ['on', 'off', 'express', 'cached', 'baseline', 'lesson'];
/**
 * The targets that are the service (node dist/main.js), with the settings each one runs with. The
 * prediction cache is off except in `cached`: the others measure inference, against a baseline and a
 * lesson that cache nothing; `cached` answers the same bodies from the cache once warm-up has seen them.
 */
export type ServiceTargetId = 'on' | 'off' | 'express' | 'cached';
export const SERVICE_SETTINGS: Record<
  ServiceTargetId,
  { adapter: 'fastify' | 'express'; batching: boolean; cache: boolean }
> = {
  on: { adapter: 'fastify', batching: true, cache: false },
  off: { adapter: 'fastify', batching: false, cache: false },
  express: { adapter: 'express', batching: true, cache: false },
  cached: { adapter: 'fastify', batching: true, cache: true },
};
export const isServiceTarget = (id: TargetId): id is ServiceTargetId => id in SERVICE_SETTINGS;

/**
 * The service's own settings that the bench sets; recorded with the results. HTTP_ADAPTER is set even
 * where it is the default (fastify), so that a change of default cannot silently change what a target is.
 */
export function serviceEnv(port: number, id: ServiceTargetId, repository: string): Record<string, string> {
  const { adapter, batching, cache } = SERVICE_SETTINGS[id];
  return {
    PORT: String(port),
    HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
    // gRPC on a free port: the REST cells measure REST, and no two services may fight over 8001.
    GRPC_PORT: '0',
    HTTP_ADAPTER: adapter,
    BATCHING_ENABLED: String(batching),
    CACHE_ENABLED: String(cache),
    MODEL_REPOSITORY: repository,
  };
}

export interface TargetInfo {
  id: TargetId;
  /** Long name, for documents. */
  label: string;
  /** Short name, for table headers. */
  short: string;
  models: readonly ModelName[];
  path(model: ModelName, route: Route): string;
  /** The predicted class of each instance in a 200 answer, whatever the target's answer shape. */
  labels(route: Route, answer: unknown): number[];
}

// The service and the baseline answer alike: a prediction object, or { predictions: [object, ...] }.
const v1Path = (model: ModelName, route: Route): string =>
  `/v1/models/${model}/predict${route === 'batch' ? '/batch' : ''}`;
const v1Labels = (route: Route, answer: unknown): number[] => {
  const a = answer as { prediction?: unknown; predictions?: { prediction?: unknown }[] };
  return route === 'single' ? [Number(a.prediction)] : (a.predictions ?? []).map((p) => Number(p.prediction));
};

export const TARGETS: Record<TargetId, TargetInfo> = {
  on: {
    id: 'on',
    label: 'service, batching on, Fastify',
    short: 'svc on',
    models: MODELS,
    path: v1Path,
    labels: v1Labels,
  },
  off: {
    id: 'off',
    label: 'service, batching off, Fastify',
    short: 'svc off',
    models: MODELS,
    path: v1Path,
    labels: v1Labels,
  },
  // Same cells as `on`, on the other HTTP adapter: what the framework layer alone changes.
  express: {
    id: 'express',
    label: 'service, batching on, Express',
    short: 'svc express',
    models: MODELS,
    path: v1Path,
    labels: v1Labels,
  },
  // Same cells as `on`, with the in-memory prediction cache: what a repeated input costs.
  cached: {
    id: 'cached',
    label: 'service, batching on, cache on, Fastify',
    short: 'svc cached',
    models: MODELS,
    path: v1Path,
    labels: v1Labels,
  },
  baseline: {
    id: 'baseline',
    label: 'baseline (node:http + ort)',
    short: 'baseline',
    models: MODELS,
    path: v1Path,
    labels: v1Labels,
  },
  lesson: {
    id: 'lesson',
    label: 'lesson FastAPI (iris only)',
    short: 'lesson',
    models: ['iris'],
    // The lesson serves iris only, on its own routes: /predict answers { prediction, ... },
    // /predict/batch answers { predictions: [int, ...], probabilities: [...] }.
    path: (_model, route) => (route === 'batch' ? '/predict/batch' : '/predict'),
    labels: (route, answer) => {
      const a = answer as { prediction?: unknown; predictions?: unknown[] };
      return route === 'single' ? [Number(a.prediction)] : (a.predictions ?? []).map(Number);
    },
  },
};

export interface Sample {
  body: string;
  /** The class scikit-learn predicts for each instance of the body, in order. */
  expected: number[];
}

export interface ReferenceRow {
  features: number[];
  label: number;
}

function referenceRows(repoRoot: string, model: ModelName): ReferenceRow[] {
  const file = path.join(repoRoot, MODEL_DIRS[model], 'reference.json');
  const rows = (JSON.parse(fs.readFileSync(file, 'utf8')) as { rows: ReferenceRow[] }).rows;
  if (!Array.isArray(rows) || rows.length < BATCH_SIZE)
    throw new Error(`${file}: expected at least ${BATCH_SIZE} rows`);
  return rows;
}

/** The reference rows of the single bodies, one per body; the V2 cells send the same rows. */
export function singleRows(repoRoot: string, model: ModelName): ReferenceRow[] {
  const rows = referenceRows(repoRoot, model);
  const stride = Math.floor(rows.length / SINGLE_BODIES);
  return Array.from({ length: SINGLE_BODIES }, (_, i) => rows[(i * stride + (i % 3)) % rows.length]);
}

/**
 * The bodies of one (model, route). Rows are taken with a stride so that the bodies span the classes
 * (iris's reference rows are sorted by class). Iris's first single body is [5.1, 3.5, 1.4, 0.2], class 0,
 * the row every target is first checked with.
 */
export function samples(repoRoot: string, model: ModelName, route: Route): Sample[] {
  if (route === 'single') {
    return singleRows(repoRoot, model).map((row) => ({
      body: JSON.stringify({ features: row.features }),
      expected: [row.label],
    }));
  }
  const rows = referenceRows(repoRoot, model);
  return Array.from({ length: BATCH_BODIES }, (_, b) => {
    const batch = Array.from({ length: BATCH_SIZE }, (_, j) => rows[(b * 37 + j * 9) % rows.length]);
    return { body: JSON.stringify({ instances: batch.map((r) => r.features) }), expected: batch.map((r) => r.label) };
  });
}

/** Status, JSON (or the raw text when it is not JSON) and text of an answer. */
async function read(res: Response): Promise<{ status: number; json: unknown; text: string }> {
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: res.status, json, text };
}

function post(baseUrl: string, route: string, body: string): Promise<{ status: number; json: unknown }> {
  return fetch(baseUrl + route, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body }).then(read);
}

/**
 * Sends every body the target will be loaded with once and compares the predicted classes with
 * scikit-learn's. Throws on the first wrong answer: a fast wrong service is not a result.
 */
export async function checkAnswers(repoRoot: string, baseUrl: string, target: TargetInfo): Promise<void> {
  // The canonical check first, so that a broken target fails with the simplest possible message.
  const first = await post(baseUrl, target.path('iris', 'single'), JSON.stringify({ features: [5.1, 3.5, 1.4, 0.2] }));
  const got = first.status === 200 ? target.labels('single', first.json) : [];
  if (got.length !== 1 || got[0] !== 0) {
    throw new Error(
      `${target.label}: iris [5.1, 3.5, 1.4, 0.2] should be class 0, got HTTP ${first.status} ${JSON.stringify(first.json).slice(0, 300)}`,
    );
  }
  for (const model of target.models) {
    for (const route of ROUTES) {
      for (const sample of samples(repoRoot, model, route)) {
        const res = await post(baseUrl, target.path(model, route), sample.body);
        const labels = res.status === 200 ? target.labels(route, res.json) : [];
        if (JSON.stringify(labels) !== JSON.stringify(sample.expected)) {
          throw new Error(
            `${target.label}: ${model} ${route} answered HTTP ${res.status} with classes ${JSON.stringify(labels)}, ` +
              `expected ${JSON.stringify(sample.expected)}: ${JSON.stringify(res.json).slice(0, 300)}`,
          );
        }
      }
    }
  }
}

/**
 * The HTTP layer floor: the cheapest route each server has, loaded like a cell, to show how many requests
 * per second the HTTP stack alone allows before any inference. The service's GET /health/live answers a
 * constant {"status":"ok"}; the baseline (bare node:http) has the same route with the same answer.
 * `off` is left out: it is the same Fastify stack as `on`, so its floor would be `on`'s.
 */
export type FloorTargetId = 'on' | 'express' | 'baseline';
export const FLOOR_TARGET_IDS: readonly FloorTargetId[] = ['on', 'express', 'baseline'];
export const isFloorTarget = (id: TargetId): id is FloorTargetId =>
  (FLOOR_TARGET_IDS as readonly TargetId[]).includes(id);
export const FLOOR_PATH = '/health/live';
export const FLOOR_CONCURRENCY = 32;
/** Short names for the floor table (the baseline's process is the bare node:http server there). */
export const FLOOR_LABELS: Record<FloorTargetId, string> = {
  on: 'service, Fastify',
  express: 'service, Express',
  baseline: 'bare node:http (baseline)',
};

/** The floor route must answer 200 {"status":"ok"}, or the floor would measure an error path. */
export async function checkFloorAnswer(baseUrl: string, target: TargetInfo): Promise<void> {
  const { status, json, text } = await read(await fetch(baseUrl + FLOOR_PATH));
  if (status !== 200 || JSON.stringify(json) !== JSON.stringify({ status: 'ok' })) {
    throw new Error(
      `${target.label}: GET ${FLOOR_PATH} should answer 200 {"status":"ok"}, got HTTP ${status} ${text.slice(0, 300)}`,
    );
  }
}
