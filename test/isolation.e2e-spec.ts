import { INestApplication } from '@nestjs/common';
import { GrpcServer } from '../src/grpc/grpc.server';
import { bundled, fixture, makeRepository, startApp } from './support/app';
import { call, Clients, connect } from './support/grpc';
import { listen } from './support/http';
import { infer } from './support/triton-client';
import { TYPE_CASES } from './support/type-cases';

/**
 * Valid requests are answered whatever else the model is given. A request whose rows pass validation
 * but fail inside onnxruntime (the gather fixture's out-of-range indices) fails alone, with its own
 * error, even when it shared a run with others; and a tensor of zero rows, which is valid Open
 * Inference Protocol input, is answered on every route with the prediction cache on and off.
 */

/** The gather fixture's table: indices -5..4 answer, any other index fails inside onnxruntime. */
const TABLE = [10, 20, 30, 40, 50];
const gathered = (indices: readonly number[]) => indices.map((i) => TABLE[i < 0 ? i + 5 : i]);

/** Each request's indices, one row each. Every bad request has one index out of range, some beside good ones. */
const GOOD = [[0], [1, 2], [-1], [3, -5, 4], [2], [-2, 0], [4], [1]];
const BAD = [[5], [0, 9], [-6], [100, 1]];

interface Answer {
  readonly status: number;
  readonly body: Record<string, unknown>;
}

async function metricValue(base: string, name: string, labels: string): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}} `));
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe.each([
  ['off', 'false'],
  ['on', 'true'],
])('a bad request among coalesced ones (prediction cache %s)', (_, cacheEnabled) => {
  let app: INestApplication;
  let base: string;

  beforeAll(async () => {
    // A queue delay long enough that requests sent together share runs on a loaded machine.
    const dir = await makeRepository(
      { gather: fixture('gather') },
      { 'gather/config.json': JSON.stringify({ batching: { max_queue_delay_ms: 150 } }) },
    );
    // The 500s are the point here: their error log lines would only bury the test's own output.
    app = await startApp({
      MODEL_REPOSITORY: dir,
      INFERENCE_WORKERS: '1',
      CACHE_ENABLED: cacheEnabled,
      LOG_LEVEL: 'fatal',
    });
    base = `http://127.0.0.1:${await listen(app)}`;
  });
  afterAll(() => app.close());

  /** A V2 request of the given indices; the v1 route for single good indices, so both protocols share runs. */
  const send = async (indices: readonly number[], v1 = false): Promise<Answer> => {
    const [path, body] = v1
      ? ['/v1/models/gather/predict', { inputs: { idx: indices } }]
      : [
          '/v2/models/gather/infer',
          { inputs: [{ name: 'idx', shape: [indices.length, 1], datatype: 'INT64', data: indices }] },
        ];
    const res = await fetch(base + path, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    });
    const json = (await res.json()) as Record<string, unknown>;
    // What differs between two answers to the same request by right.
    delete json.latency_ms;
    delete json.requestId;
    return { status: res.status, body: json };
  };
  const requests = [
    ...GOOD.map((i) => ({ indices: i, v1: i.length === 1 && i[0] > 0 })),
    ...BAD.map((i) => ({ indices: i, v1: false })),
  ];

  it('fails only the poisoned requests, each with its own error, and answers every other one as it would alone', async () => {
    const alone: Answer[] = [];
    for (const r of requests) alone.push(await send(r.indices, r.v1));
    GOOD.forEach((indices, i) => {
      expect(alone[i].status).toBe(200);
      const out = alone[i].body.outputs;
      // v1 answers { out: [...] }, V2 a list of named tensors.
      const values = Array.isArray(out) ? (out as { data: number[] }[])[0].data : (out as { out: number[] }).out;
      expect(values).toEqual(gathered(indices));
    });
    BAD.forEach((indices, j) => {
      const answer = alone[GOOD.length + j];
      expect(answer.status).toBe(500);
      const bad = indices.find((i) => i < -5 || i > 4)!;
      expect(answer.body.error).toEqual(expect.stringContaining(`idx=${bad}`));
    });

    const labels = 'model="gather",version="1"';
    const splitsBefore = await metricValue(base, 'inference_batch_splits_total', labels);
    const failedBefore = await metricValue(
      base,
      'inference_request_failure_total',
      `${labels},reason="BACKEND",code="INFERENCE_FAILED"`,
    );
    let rounds = 0;
    // Sent together, the requests share runs; a round on a machine so loaded that no bad request shared a run
    // splits nothing, so rounds repeat (a few at most) until one did. Every round's answers are checked.
    do {
      rounds++;
      const together = await Promise.all(requests.map((r) => send(r.indices, r.v1)));
      expect(together).toEqual(alone);
    } while (rounds < 10 && (await metricValue(base, 'inference_batch_splits_total', labels)) === splitsBefore);
    expect(await metricValue(base, 'inference_batch_splits_total', labels)).toBeGreaterThan(splitsBefore);
    expect(
      (await metricValue(
        base,
        'inference_request_failure_total',
        `${labels},reason="BACKEND",code="INFERENCE_FAILED"`,
      )) - failedBefore,
    ).toBe(rounds * BAD.length);

    // A model that fails on some inputs is still a model that serves.
    expect((await fetch(`${base}/v2/models/gather/ready`)).status).toBe(200);
    expect((await fetch(`${base}/health/ready`)).status).toBe(200);
    expect(((await (await fetch(`${base}/v1/models/gather`)).json()) as { state: string }).state).toBe('READY');
    expect(await send([3, -4])).toMatchObject({ status: 200, body: { outputs: [{ data: gathered([3, -4]) }] } });
  });
});

describe.each([
  ['off', 'false'],
  ['on', 'true'],
])('tensors of zero rows (prediction cache %s)', (_, cacheEnabled) => {
  let app: INestApplication;
  let port: number;
  let clients: Clients;

  beforeAll(async () => {
    const dir = await makeRepository({
      iris: bundled('iris'),
      multi_input: fixture('multi_input'),
      types: fixture('types'),
      fp16: fixture('fp16'),
    });
    app = await startApp({ MODEL_REPOSITORY: dir, CACHE_ENABLED: cacheEnabled });
    port = await listen(app);
    clients = connect(app.get(GrpcServer).port!);
  });
  afterAll(async () => {
    clients.close();
    await app.close();
  });

  /** Each model's inputs with no rows, and the outputs (datatype, shape) it must answer. */
  const CASES: Record<
    string,
    { inputs: { name: string; datatype: string; shape: number[] }[]; outputs: Record<string, [string, number[]]> }
  > = {
    iris: {
      inputs: [{ name: 'float_input', datatype: 'FP32', shape: [0, 4] }],
      outputs: { output_label: ['INT64', [0]], output_probability: ['FP32', [0, 3]] },
    },
    multi_input: {
      inputs: [
        { name: 'a', datatype: 'FP32', shape: [0, 2] },
        { name: 'b', datatype: 'INT64', shape: [0, 3] },
      ],
      outputs: { total: ['FP32', [0, 1]], b_max: ['INT64', [0]] },
    },
    types: {
      inputs: TYPE_CASES.map((c) => ({ name: `${c.name}_in`, datatype: c.datatype, shape: [0, 2] })),
      outputs: Object.fromEntries(TYPE_CASES.map((c) => [`${c.name}_out`, [c.datatype, [0, 2]]])),
    },
    fp16: {
      inputs: [{ name: 'f16_in', datatype: 'FP16', shape: [0, 2] }],
      outputs: { f16_out: ['FP16', [0, 2]] },
    },
  };
  const models = Object.keys(CASES);

  it.each(models)('%s over V2 JSON: 200 with every output empty', async (model) => {
    const res = await fetch(`http://127.0.0.1:${port}/v2/models/${model}/infer`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ inputs: CASES[model].inputs.map((i) => ({ ...i, data: [] })) }),
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { outputs: { name: string; datatype: string; shape: number[]; data: [] }[] };
    expect(Object.fromEntries(body.outputs.map((o) => [o.name, [o.datatype, o.shape]]))).toEqual(CASES[model].outputs);
    for (const o of body.outputs) expect(o.data).toEqual([]);
  });

  it.each(models)('%s over V2 binary tensors: 200 with every output empty', async (model) => {
    const answer = await infer(
      port,
      model,
      CASES[model].inputs.map((i) => ({ ...i, values: [] })),
    );
    expect(answer.status).toBe(200);
    expect(Object.fromEntries(Object.entries(answer.outputs).map(([n, o]) => [n, [o.datatype, o.shape]]))).toEqual(
      CASES[model].outputs,
    );
    for (const o of Object.values(answer.outputs)) expect(o.values).toEqual([]);
  });

  it.each(models)('%s over gRPC, typed and raw contents: every output empty', async (model) => {
    const inputs = CASES[model].inputs;
    const forms = [
      { model_name: model, inputs, raw_input_contents: inputs.map(() => Buffer.alloc(0)) },
      // FP16 travels only as raw contents.
      ...(model === 'fp16' ? [] : [{ model_name: model, inputs }]),
    ];
    for (const form of forms) {
      const { response, error } = await call<{
        outputs: { name: string; datatype: string; shape: string[] }[];
        raw_output_contents: Buffer[];
      }>(clients.inference, 'ModelInfer', form);
      expect(error).toBeUndefined();
      expect(Object.fromEntries(response!.outputs.map((o) => [o.name, [o.datatype, o.shape.map(Number)]]))).toEqual(
        CASES[model].outputs,
      );
      for (const raw of response!.raw_output_contents) expect(raw.length).toBe(0);
    }
  });

  it('v1: a batch of no instances is refused with 400 INVALID_INPUT, as documented', async () => {
    const res = await fetch(`http://127.0.0.1:${port}/v1/models/iris/predict/batch`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ instances: [] }),
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: 'INVALID_INPUT', details: [{ path: 'instances' }] });
  });
});
