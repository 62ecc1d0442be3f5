import { ChildProcess } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { bundled, fixture, makeRepository } from './support/app';
import { exited, freePort, onOutputLines, serve, waitFor } from './support/process';

const VERSIONS = fixture('iris_versions');
const ADMIN_KEY = 'admin-key-0123456789abcdef';
const INFERENCE_KEY = 'inference-key-0123456789ab';

/** iris (untouched throughout) and `iv`, the two-version fixture with only version 1 on disk and no default_version. */
async function repository(): Promise<string> {
  const config = JSON.parse(await fs.readFile(path.join(VERSIONS, 'config.json'), 'utf8')) as Record<string, unknown>;
  delete config.default_version;
  const dir = await makeRepository(
    { iris: bundled('iris'), iv: VERSIONS },
    { 'iv/config.json': JSON.stringify(config) },
  );
  await fs.rm(path.join(dir, 'iv', '2'), { recursive: true });
  return dir;
}

/** A copy made under a hidden name and renamed in, as an operator's deploy script would. */
async function copyVersion(dir: string, version: number, contents: Buffer): Promise<void> {
  const staging = path.join(dir, 'iv', `.staging-${version}`);
  await fs.mkdir(staging, { recursive: true });
  await fs.writeFile(path.join(staging, 'model.onnx'), contents);
  await fs.rename(staging, path.join(dir, 'iv', String(version)));
}

class Service {
  readonly lines: Record<string, unknown>[] = [];
  readonly base: string;
  private readonly done: Promise<unknown>;

  constructor(
    private readonly child: ChildProcess,
    port: number,
  ) {
    this.base = `http://127.0.0.1:${port}`;
    this.done = exited(child);
    onOutputLines(child, (line) => {
      try {
        this.lines.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        this.lines.push({ msg: line });
      }
    });
  }

  static async start(env: Record<string, string>): Promise<Service> {
    const port = await freePort();
    // Debug: each version's READY line, which the checks below count, is below info.
    const service = new Service(
      serve({ PORT: String(port), HOST: '127.0.0.1', INFERENCE_WORKERS: '2', LOG_LEVEL: 'debug', ...env }),
      port,
    );
    // Longer than waitUntilReady's 30 s: these machines are shared, and start-up loads every worker.
    const ready = () =>
      fetch(`${service.base}/health/ready`).then(
        (r) => r.ok,
        () => false,
      );
    await waitFor(ready, 90000, 'readiness').catch(async (err: Error) => {
      await service.stop();
      throw err;
    });
    return service;
  }

  messages(pattern: RegExp): string[] {
    return this.lines.map((l) => String(l.msg)).filter((m) => pattern.test(m));
  }

  post(route: string, body?: unknown, key?: string): Promise<Response> {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (key) headers.authorization = `Bearer ${key}`;
    return fetch(`${this.base}${route}`, {
      method: 'POST',
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  }

  async stop(): Promise<void> {
    this.child.kill('SIGTERM');
    await this.done;
  }
}

const FEATURES = [5.1, 3.5, 1.4, 0.2];
const V2_BODY = { inputs: [{ name: 'float_input', shape: [1, 4], datatype: 'FP32', data: FEATURES }] };

/**
 * Eight clients, half on v1 and half on V2, half on `iv` and half on iris, each posting back to
 * back until stopped; every answer is recorded with the version that gave it. A readiness probe
 * runs beside them.
 */
function load(service: Service, key?: string) {
  const outcomes: { client: string; status: number; version?: number; at: number }[] = [];
  const probes: number[] = [];
  let running = true;
  const headers: Record<string, string> = { 'content-type': 'application/json', 'cache-control': 'no-store' };
  if (key) headers.authorization = `Bearer ${key}`;
  const clients = Array.from({ length: 8 }, async (_, i) => {
    const model = i % 4 < 2 ? 'iv' : 'iris';
    const v2 = i % 2 === 1;
    const client = `${model}-${v2 ? 'v2' : 'v1'}-${i}`;
    while (running) {
      const res = await fetch(`${service.base}${v2 ? `/v2/models/${model}/infer` : `/v1/models/${model}/predict`}`, {
        method: 'POST',
        headers,
        body: JSON.stringify(v2 ? V2_BODY : { features: FEATURES }),
      });
      const answer = (await res.json()) as { version?: number | string; model_version?: string };
      const version = Number(answer.model_version ?? answer.version);
      outcomes.push({
        client,
        status: res.status,
        version: Number.isNaN(version) ? undefined : version,
        at: Date.now(),
      });
    }
  });
  const probe = (async () => {
    while (running) {
      probes.push((await fetch(`${service.base}/health/ready`)).status);
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  return {
    outcomes,
    probes,
    /** Waits until every client has had at least `n` more answers. */
    async answers(n: number) {
      const start = new Map<string, number>();
      for (const o of outcomes) start.set(o.client, (start.get(o.client) ?? 0) + 1);
      const counts = () => {
        const now = new Map<string, number>();
        for (const o of outcomes) now.set(o.client, (now.get(o.client) ?? 0) + 1);
        return [...now].every(([c, k]) => k - (start.get(c) ?? 0) >= n) && now.size === 8;
      };
      await waitFor(counts, 30000, `${n} more answers per client`);
    },
    async stop() {
      running = false;
      await Promise.all([...clients, probe]);
    },
  };
}

const failures = (outcomes: { status: number }[]) => outcomes.filter((o) => o.status !== 200);

describe('model lifecycle, a real process under load from 8 clients', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await repository();
  });

  it('explicit: a new version loads with no failed request; a corrupt one fails alone; concurrent loads load once; unload leaves the other models alone', async () => {
    const service = await Service.start({ MODEL_REPOSITORY: dir, MODEL_CONTROL_MODE: 'explicit' });
    const traffic = load(service);
    try {
      await traffic.answers(5);
      expect(new Set(traffic.outcomes.filter((o) => o.client.startsWith('iv')).map((o) => o.version))).toEqual(
        new Set([1]),
      );

      // A new version, and two loads asked for at once: one load of it.
      await copyVersion(dir, 2, await fs.readFile(path.join(VERSIONS, '2', 'model.onnx')));
      const [a, b] = await Promise.all([
        service.post('/v2/repository/models/iv/load'),
        service.post('/v2/repository/models/iv/load'),
      ]);
      expect([a.status, b.status]).toEqual([200, 200]);
      expect(await a.json()).toMatchObject({ name: 'iv', default_version: '2' });
      expect(service.messages(/^model iv version 2 READY/)).toHaveLength(1);
      // Answers some time after the switch (requests in flight at the switch may still be version 1's).
      const switched = Date.now();
      const ivAfterSwitch = () => traffic.outcomes.filter((o) => o.client.startsWith('iv') && o.at > switched + 200);
      await waitFor(() => ivAfterSwitch().length >= 5, 30000, 'answers of model iv after the switch');
      const ivAfter = ivAfterSwitch();
      expect(new Set(ivAfter.map((o) => o.version))).toEqual(new Set([2]));

      // A corrupt version: the load says why, the index shows it FAILED, version 2 keeps serving.
      await copyVersion(dir, 3, Buffer.from('this is not an ONNX model'));
      const bad = await service.post('/v2/repository/models/iv/load');
      expect(bad.status).toBe(400);
      expect(((await bad.json()) as { error: string }).error).toMatch(/version 3: .*iv\/3\/model\.onnx/);
      const index = (await (await service.post('/v2/repository/index', {})).json()) as Record<string, string>[];
      expect(index).toEqual(
        expect.arrayContaining([
          { name: 'iv', version: '2', state: 'READY' },
          { name: 'iv', version: '3', state: 'FAILED', reason: expect.stringMatching(/Protobuf parsing failed/) },
        ]),
      );
      const failedAt = Date.now();
      await traffic.answers(5);
      expect(
        new Set(traffic.outcomes.filter((o) => o.client.startsWith('iv') && o.at > failedAt).map((o) => o.version)),
      ).toEqual(new Set([2]));
      expect(failures(traffic.outcomes)).toEqual([]);
      expect(traffic.probes.filter((s) => s !== 200)).toEqual([]);

      // Unload: iv's requests get a clean 404, iris never notices, readiness stays up.
      const before = traffic.outcomes.length;
      expect((await service.post('/v2/repository/models/iv/unload')).status).toBe(200);
      const unloadedAt = Date.now();
      const settledAnswers = () =>
        traffic.outcomes.slice(before).filter((o) => o.client.startsWith('iv') && o.at > unloadedAt + 200);
      await waitFor(() => settledAnswers().length >= 5, 30000, 'answers of model iv after the unload');
      await traffic.answers(5);
      const after = traffic.outcomes.slice(before);
      const settled = after.filter((o) => o.at > unloadedAt + 200);
      expect(new Set(settled.filter((o) => o.client.startsWith('iv')).map((o) => o.status))).toEqual(new Set([404]));
      expect(failures(after.filter((o) => o.client.startsWith('iv'))).every((o) => o.status === 404)).toBe(true);
      expect(failures(traffic.outcomes.filter((o) => o.client.startsWith('iris')))).toEqual([]);
      expect(traffic.probes.filter((s) => s !== 200)).toEqual([]);
      expect(service.messages(/^model iv version 2 READY -> UNLOADED in [\d.]+ ms/)).toHaveLength(1);
      const indexAfter = (await (await service.post('/v2/repository/index', { ready: true })).json()) as {
        name: string;
      }[];
      expect(indexAfter.map((r) => r.name)).toEqual(['iris']);
      const metrics = await (await fetch(`${service.base}/metrics`)).text();
      // Start-up, the first of the two concurrent loads, and the second, which ran after it and found
      // nothing new to load (version 2 READY was logged once); the corrupt version's load failed.
      expect(metrics).toMatch(/^model_load_total\{model="iv",outcome="success"\} 3$/m);
      expect(metrics).toMatch(/^model_load_total\{model="iv",outcome="failure"\} 1$/m);
      expect(metrics).toMatch(/^model_unload_total\{model="iv"\} 3$/m);
      expect(metrics).toMatch(/^model_versions\{state="READY"\} 1$/m);
    } finally {
      await traffic.stop();
      await service.stop();
    }
  });

  it('poll: a version copied in is picked up with no failed request, and a removed one is drained', async () => {
    const service = await Service.start({
      MODEL_REPOSITORY: dir,
      MODEL_CONTROL_MODE: 'poll',
      REPOSITORY_POLL_SECONDS: '1',
    });
    const traffic = load(service);
    try {
      await traffic.answers(5);
      await copyVersion(dir, 2, await fs.readFile(path.join(VERSIONS, '2', 'model.onnx')));
      await waitFor(
        () => traffic.outcomes.some((o) => o.client.startsWith('iv') && o.version === 2),
        30000,
        'version 2 to answer',
      );
      await fs.rm(path.join(dir, 'iv', '2'), { recursive: true });
      await waitFor(
        () => service.messages(/^model iv version 2 READY -> UNLOADED/).length === 1,
        30000,
        'version 2 to go',
      );
      // Requests version 2 had accepted are still answered by it while it drains: look a moment later.
      const goneAt = Date.now();
      const ivAfterGone = () => traffic.outcomes.filter((o) => o.client.startsWith('iv') && o.at > goneAt + 200);
      await waitFor(() => ivAfterGone().length >= 5, 30000, 'answers of model iv after version 2 went');
      expect(new Set(ivAfterGone().map((o) => o.version))).toEqual(new Set([1]));
      expect(failures(traffic.outcomes)).toEqual([]);
      expect(traffic.probes.filter((s) => s !== 200)).toEqual([]);
      // In poll mode the disk is the only way in.
      const refused = await service.post('/v2/repository/models/iv/load');
      expect(refused.status).toBe(400);
      expect(((await refused.json()) as { error: string }).error).toMatch(/needs MODEL_CONTROL_MODE=explicit; .*=poll/);
    } finally {
      await traffic.stop();
      await service.stop();
    }
  });

  it('explicit with API keys: load and unload need the admin scope; a model uploaded through load serves', async () => {
    const service = await Service.start({
      MODEL_REPOSITORY: dir,
      MODEL_CONTROL_MODE: 'explicit',
      API_KEYS: `${INFERENCE_KEY},${ADMIN_KEY}:inference+admin`,
    });
    try {
      expect((await service.post('/v2/repository/index', {}, INFERENCE_KEY)).status).toBe(200);
      const forbidden = await service.post('/v2/repository/models/iv/unload', undefined, INFERENCE_KEY);
      expect(forbidden.status).toBe(403);
      expect(((await forbidden.json()) as { error: string }).error).toMatch(/admin scope/);
      expect((await service.post('/v2/repository/models/iv/load', undefined)).status).toBe(401);

      const bytes = await fs.readFile(path.join(VERSIONS, '2', 'model.onnx'));
      const config = await fs.readFile(path.join(VERSIONS, 'config.json'), 'utf8');
      const uploaded = await service.post(
        '/v2/repository/models/uploaded/load',
        { parameters: { config, 'file:1/model.onnx': bytes.toString('base64') } },
        ADMIN_KEY,
      );
      expect(uploaded.status).toBe(200);
      expect(await fs.readFile(path.join(dir, 'uploaded', '1', 'model.onnx'))).toEqual(bytes);
      expect((await fs.readdir(path.join(dir, 'uploaded'))).sort()).toEqual(['1', 'config.json']);
      const res = await service.post('/v1/models/uploaded/predict', { features: FEATURES }, INFERENCE_KEY);
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ model: 'uploaded', version: 1, label: 'setosa' });

      // Nothing is written for a bad upload.
      const traversal = await service.post(
        '/v2/repository/models/uploaded/load',
        { parameters: { 'file:../../escape.onnx': bytes.toString('base64') } },
        ADMIN_KEY,
      );
      expect(traversal.status).toBe(400);
      await expect(fs.stat(path.join(dir, '..', 'escape.onnx'))).rejects.toThrow();
    } finally {
      await service.stop();
    }
  });

  it('none: the index answers, load and unload are refused naming the mode that allows them', async () => {
    const service = await Service.start({ MODEL_REPOSITORY: dir });
    try {
      const index = await service.post('/v2/repository/index');
      expect(index.status).toBe(200);
      expect(await index.json()).toEqual([
        { name: 'iris', version: '1', state: 'READY' },
        { name: 'iv', version: '1', state: 'READY' },
      ]);
      for (const op of ['load', 'unload']) {
        const res = await service.post(`/v2/repository/models/iv/${op}`);
        expect(res.status).toBe(400);
        expect(((await res.json()) as { error: string }).error).toMatch(/needs MODEL_CONTROL_MODE=explicit; .*=none/);
      }
    } finally {
      await service.stop();
    }
  });
});
