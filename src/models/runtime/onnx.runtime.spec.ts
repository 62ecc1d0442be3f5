import { Logger } from '@nestjs/common';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { loadConfig } from '../../config/app.config';
import { fixture, makeRepository } from '../../testing/model-repository';
import { RunLostError } from './model-runtime.interface';
import { OnnxRuntime } from './onnx.runtime';

const OPTIONS = { intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: 'all' as const };
const x = (...values: number[]) => ({ x: { type: 'float32' as const, dims: [1, 3], data: Float32Array.from(values) } });

/** The runtime's pool, as the runtime holds it: only a stopped worker's own objects are reached into. */
interface PoolWorker {
  request(message: { op: 'release'; key: string }): Promise<unknown>;
  terminate(): Promise<void>;
  ready: Promise<void>;
}
const pool = (runtime: OnnxRuntime) => (runtime as unknown as { workers: PoolWorker[] }).workers;

/**
 * A worker stopped from outside while idle (stopping one inside a run aborts the process; the e2e suite
 * worker-death kills one holding a run, through the worker's test fault injection).
 */
describe('OnnxRuntime when a worker dies', () => {
  let runtime: OnnxRuntime;
  const errors: string[] = [];

  beforeEach(() => {
    runtime = new OnnxRuntime(loadConfig({ INFERENCE_WORKERS: '1' }));
    errors.length = 0;
    jest.spyOn(Logger.prototype, 'error').mockImplementation((message: unknown) => void errors.push(String(message)));
  });
  afterEach(async () => {
    jest.restoreAllMocks();
    await runtime.close();
  });

  it('fails at once what is still sent to the dead worker, and runs the sessions on the one replacing it', async () => {
    const linear = await runtime.load(path.join(fixture('linear'), '1', 'model.onnx'), OPTIONS);
    const dead = pool(runtime)[0];
    await dead.terminate();
    // A run that waited for a worker's reload and reaches it after its exit would otherwise wait forever.
    await expect(dead.request({ op: 'release', key: 'any' })).rejects.toBeInstanceOf(RunLostError);
    await expect(dead.request({ op: 'release', key: 'any' })).rejects.toThrow(
      /^the inference worker stopped \(exit code 1\) before answering$/,
    );
    expect(pool(runtime)).toHaveLength(1);
    expect(pool(runtime)[0]).not.toBe(dead);
    expect(errors).toEqual([
      'the inference worker stopped (exit code 1) before answering 0 request(s), which fail; ' +
        'starting a new inference worker',
    ]);
    expect(Array.from((await linear.run(x(1, 2, 3))).y.data as Float32Array)).toEqual([4.75]);
  });

  it('serves the other sessions when one does not load again on the replacement, and fails only its runs', async () => {
    const repository = await makeRepository({ kept: fixture('linear'), gone: fixture('linear') });
    const kept = await runtime.load(path.join(repository, 'kept', '1', 'model.onnx'), OPTIONS);
    const gone = await runtime.load(path.join(repository, 'gone', '1', 'model.onnx'), OPTIONS);
    await fs.rm(path.join(repository, 'gone'), { recursive: true });
    await pool(runtime)[0].terminate();
    await expect(pool(runtime)[0].ready).resolves.toBeUndefined();
    expect(errors.filter((e) => e.includes('did not load again on the new inference worker'))).toHaveLength(1);
    expect(Array.from((await kept.run(x(-1, 0.5, 4))).y.data as Float32Array)).toEqual([7.25]);
    await expect(gone.run(x(1, 2, 3))).rejects.toThrow(/^no session session-\d+ in this worker$/);
    await fs.rm(repository, { recursive: true });
  });
});
