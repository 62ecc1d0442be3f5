import { ChildProcess } from 'node:child_process';
import { promises as fs, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { bundled, fixture, makeRepository } from './support/app';
import { exited, freePort, onOutputLines, serve, waitFor, waitUntilReady } from './support/process';

/**
 * A worker thread that dies while it holds a run, in the real process. Nothing a request can do kills a worker, and
 * stopping one from outside while onnxruntime runs in it aborts the whole process (onnxruntime-node 1.30), so the
 * service is started with its test fault injection (ONNX_WORKER_FAULT, src/models/runtime/onnx.worker.ts): a worker
 * exits, unanswered, on receiving a run of `doomed` that holds POISON, and serves every other run.
 */
const POISON = 666;
/** Exit code of the injected fault. */
const FAULT_EXIT = 70;
/** The slow fixture's width: a run of a few GFlop, long next to the fault, whose sum D³ = 2³⁶ is exact in float32. */
const WIDTH = 4096;
const wide = { inputs: { x: [new Array<number>(WIDTH).fill(1)] } };
const IRIS_ROW = { features: [5.1, 3.5, 1.4, 0.2] };

interface Answer {
  readonly name: string;
  readonly status: number;
  readonly body: Record<string, unknown>;
}

describe('a worker that dies holding a run (a real process, 2 inference workers)', () => {
  let child: ChildProcess;
  let done: Promise<unknown>;
  let base: string;
  let repository: string;
  const lines: string[] = [];
  /** Names of the requests, in the order their answers came. */
  const order: string[] = [];

  const post = (name: string, model: string, body: unknown): Promise<Answer> =>
    fetch(`${base}/v1/models/${model}/predict`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    }).then(async (r) => {
      order.push(name);
      return { name, status: r.status, body: (await r.json()) as Record<string, unknown> };
    });

  /** Requests of the model waiting in its batcher for a worker, from the process's own /metrics. */
  async function pending(model: string): Promise<number> {
    const text = await (await fetch(`${base}/metrics`)).text();
    const line = text
      .split('\n')
      .find((l) => l.startsWith(`inference_pending_requests{model="${model}",version="1"} `));
    return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
  }

  const replacements = () => lines.filter((l) => l.includes('starting a new inference worker'));

  beforeAll(async () => {
    const iris = JSON.parse(readFileSync(path.join(bundled('iris'), 'config.json'), 'utf8')) as object;
    repository = await makeRepository(
      { doomed: fixture('linear'), iris: bundled('iris'), slow: fixture('slow'), slow_one: fixture('slow') },
      {
        // On a worker whatever its measured cost, and two requests sent together share one run: the run that is lost.
        'doomed/config.json': JSON.stringify({
          placement: 'worker',
          batching: { enabled: true, max_batch_size: 2, max_queue_delay_ms: 1000 },
        }),
        'iris/config.json': JSON.stringify({ ...iris, placement: 'worker' }),
        'slow_one/config.json': JSON.stringify({ instances: 1 }),
      },
    );
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    child = serve({
      PORT: String(port),
      HOST: '127.0.0.1',
      MODEL_REPOSITORY: repository,
      INFERENCE_WORKERS: '2',
      // Every answer must come from a run, never from the prediction cache.
      CACHE_ENABLED: 'false',
      // Requests wait behind slow runs on a shared machine: no deadline may fail them.
      REQUEST_TIMEOUT_MS: '300000',
      ONNX_WORKER_FAULT: `exit-on-run:doomed:${POISON}`,
    });
    onOutputLines(child, (line) => lines.push(line));
    done = exited(child);
    await waitUntilReady(`${base}/health/ready`);
  }, 120000);

  afterAll(async () => {
    // Whatever part of beforeAll ran: a process that never became ready is stopped too.
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await done;
    if (repository) await fs.rm(repository, { recursive: true });
  });

  it('fails exactly the requests of the run it held (500 INFERENCE_FAILED) and answers the others', async () => {
    // One slow run holds a worker: its second request waits for it (instances 1), which says the first is running.
    const slow = [post('slow_one', 'slow_one', wide), post('slow_one', 'slow_one', wide)];
    await waitFor(async () => (await pending('slow_one')) === 1 && order.length === 0, 60000, 'a slow_one run');
    // The poisoned request and a good one share a run on the other worker, which dies holding it; iris runs beside.
    const lost = [
      post('lost', 'doomed', { inputs: { x: [POISON, 0, 0] } }),
      post('lost', 'doomed', { inputs: { x: [1, 2, 3] } }),
    ];
    const iris = [0, 1, 2, 3].map(() => post('iris', 'iris', IRIS_ROW));

    for (const answer of await Promise.all(lost)) {
      expect(answer.status).toBe(500);
      expect(answer.body).toMatchObject({ statusCode: 500, error: 'INFERENCE_FAILED' });
      expect(answer.body.message).toBe(
        `Model 'doomed' version 1 failed to run: ` +
          `the inference worker stopped (exit code ${FAULT_EXIT}) before answering`,
      );
    }
    for (const answer of await Promise.all(iris)) {
      expect(answer.status).toBe(200);
      expect(answer.body.label).toBe('setosa');
    }
    for (const answer of await Promise.all(slow)) {
      expect(answer.status).toBe(200);
      expect(answer.body.outputs).toEqual({ s: WIDTH ** 3 });
    }
    // The lost run was answered while the first slow run, sent before it, was still running on the other worker.
    expect(order.indexOf('lost')).toBeLessThan(order.indexOf('slow_one'));
    // One worker died, with one request (the shared run) unanswered, and one replaced it; the process lives on.
    await waitFor(() => replacements().length > 0, 30000, 'the log line of the replacement');
    expect(replacements()).toHaveLength(1);
    expect(replacements()[0]).toContain(
      `the inference worker stopped (exit code ${FAULT_EXIT}) before answering 1 request(s), which fail`,
    );
    expect([child.exitCode, child.signalCode]).toEqual([null, null]);
    expect((await fetch(`${base}/health/ready`)).status).toBe(200);
  });

  it('runs the sessions loaded before on the new worker, and serves the model of the lost run again', async () => {
    order.length = 0;
    // Three requests and two workers: one waiting means both workers run `slow` at once, the new one among them.
    const slow = [0, 1, 2].map(() => post('slow', 'slow', wide));
    await waitFor(async () => (await pending('slow')) === 1 && order.length === 0, 60000, 'two slow runs');
    for (const answer of await Promise.all(slow)) {
      expect(answer.status).toBe(200);
      expect(answer.body.outputs).toEqual({ s: WIDTH ** 3 });
    }
    const again = await Promise.all([
      post('doomed', 'doomed', { inputs: { x: [1, 2, 3] } }),
      post('doomed', 'doomed', { inputs: { x: [-1, 0.5, 4] } }),
    ]);
    expect(again.map((a) => [a.status, a.body.outputs])).toEqual([
      [200, { y: [4.75] }],
      [200, { y: [7.25] }],
    ]);
    expect((await post('iris', 'iris', IRIS_ROW)).body.label).toBe('setosa');
    // No worker died since.
    expect(replacements()).toHaveLength(1);
  });
});
