import { TensorData } from '../models/model.types';
import { RuntimeOptions } from '../models/runtime/model-runtime.interface';
import { DEFAULT_INPUTS, FakeRuntime, FakeSession } from './fake-runtime';

// The fake stands in for onnxruntime in other specs; if it lied, they would pass for the wrong reasons.

const x = (dims: number[], ...values: number[]): TensorData => ({
  type: 'float32',
  dims,
  data: Float32Array.from(values),
});
const OPTIONS: RuntimeOptions = { intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: 'all' };

describe('FakeSession', () => {
  it('describes one dynamic float32 input x and output y unless told, and answers y = 2x at once', async () => {
    const session = new FakeSession();
    expect(session.inputs).toEqual([{ name: 'x', isTensor: true, type: 'float32', shape: [-1, -1] }]);
    expect(session.outputs).toEqual([{ name: 'y', isTensor: true, type: 'float32', shape: [-1, -1] }]);
    await expect(session.run({ x: x([2, 2], 1, 2, 3, 4.5) })).resolves.toEqual({
      y: { type: 'float32', dims: [2, 2], data: Float32Array.of(2, 4, 6, 9) },
    });
    expect(session.held).toEqual([]);
  });

  it('counts the runs started and the rows they carried', async () => {
    const session = new FakeSession();
    await session.run({ x: x([3, 1], 1, 2, 3) });
    await session.run({ x: x([1, 2], 1, 2) });
    expect([session.runCount, session.rowCount]).toEqual([2, 4]);
  });

  it('fails a run holding a negative value, so that a bad row can be made on purpose', async () => {
    const session = new FakeSession();
    await expect(session.run({ x: x([2, 1], 1, -1) })).rejects.toThrow('negative input');
    expect(session.runCount).toBe(1);
  });

  it('holds gated runs until they are finished, one at a time or all at once', async () => {
    const session = new FakeSession({ gated: true });
    const settled: number[] = [];
    const first = session.run({ x: x([1, 1], 1) }).then((o) => settled.push((o.y.data as Float32Array)[0]));
    const second = session.run({ x: x([1, 1], 2) }).then((o) => settled.push((o.y.data as Float32Array)[0]));
    // Observed from the start, so that its rejection is never left unhandled.
    const bad = session.run({ x: x([1, 1], -3) }).catch((err: Error) => err.message);
    await new Promise((r) => setImmediate(r));
    expect(settled).toEqual([]);
    expect(session.held.map((h) => Array.from(h.feeds.x.data as Float32Array))).toEqual([[1], [2], [-3]]);
    session.held[1].finish();
    expect(session.held).toHaveLength(2);
    await second;
    expect(settled).toEqual([4]);
    await session.finishAll();
    await first;
    expect(settled).toEqual([4, 2]);
    expect(await bad).toBe('negative input');
    expect(session.held).toEqual([]);
  });

  it('follows the metadata it is given: inputs must be fed, and the first input feeds the first output', async () => {
    const session = new FakeSession({
      inputs: [
        { name: 'features', isTensor: true, type: 'float32', shape: [-1, 4] },
        { name: 'mask', isTensor: true, type: 'bool', shape: [-1, 4] },
      ],
      outputs: [{ name: 'scores', isTensor: true, type: 'float32', shape: [-1, 4] }],
      warmUpError: 'zeros are not a valid mask',
    });
    expect(session.warmUpError).toBe('zeros are not a valid mask');
    await expect(session.run({ features: x([1, 4], 1, 2, 3, 4) })).rejects.toThrow("input 'mask' is missing in feeds");
    const mask: TensorData = { type: 'bool', dims: [1, 4], data: Uint8Array.of(1, 1, 1, 1) };
    expect(await session.run({ features: x([1, 4], 1, 2, 3, 4), mask })).toEqual({
      scores: { type: 'float32', dims: [1, 4], data: Float32Array.of(2, 4, 6, 8) },
    });
    // Refused runs never started.
    expect(session.runCount).toBe(1);
  });

  it('refuses to run once released', async () => {
    const session = new FakeSession();
    await session.release();
    expect(session.released).toBe(true);
    await expect(session.run({ x: x([1, 1], 1) })).rejects.toThrow('the session was released');
    expect(session.runCount).toBe(0);
  });
});

describe('FakeRuntime', () => {
  it('records each load and hands out a fresh session for it', async () => {
    const runtime = new FakeRuntime({ concurrency: 3 });
    expect([runtime.platform, runtime.concurrency]).toEqual(['fake', 3]);
    const a = await runtime.load('/repo/iris/1/model.onnx', OPTIONS);
    const b = await runtime.load('/repo/iris/2/model.onnx', OPTIONS);
    expect(a).not.toBe(b);
    expect(runtime.sessions).toEqual([a, b]);
    expect(runtime.loads).toEqual([
      { modelPath: '/repo/iris/1/model.onnx', options: OPTIONS },
      { modelPath: '/repo/iris/2/model.onnx', options: OPTIONS },
    ]);
    expect(a.inputs).toEqual(DEFAULT_INPUTS);
  });

  it('loads each file as it is told, including failures', async () => {
    const runtime = new FakeRuntime({
      load: (modelPath) =>
        modelPath.includes('broken') ? new Error('not an onnx file') : { gated: modelPath.includes('slow') },
    });
    await expect(runtime.load('/repo/broken/1/model.onnx', OPTIONS)).rejects.toThrow('not an onnx file');
    const slow = (await runtime.load('/repo/slow/1/model.onnx', OPTIONS)) as FakeSession;
    void slow.run({ x: x([1, 1], 1) });
    expect(slow.held).toHaveLength(1);
    expect(runtime.loads).toHaveLength(2);
    expect(runtime.sessions).toEqual([slow]);
    expect(runtime.concurrency).toBe(1);
    await runtime.close();
    expect(runtime.closed).toBe(true);
  });
});
