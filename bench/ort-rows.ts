/**
 * What batching can win on this CPU, before the service adds anything: onnxruntime alone, on one thread
 * (intra-op 1, as the service's workers run), timing `session.run` over random rows at each batch size
 * for the bench's models. The drop in time per row from 1 row to many is the most batching can give;
 * it differs a great deal between CPUs, which is why the bench's batching ratios do too.
 *
 *   node -r ts-node/register/transpile-only bench/ort-rows.ts [runs per size]
 */
import * as ort from 'onnxruntime-node';
import * as path from 'node:path';

const ROOT = path.resolve(__dirname, '..');
const RUNS = Number(process.argv[2] ?? 200);
const MODELS: Record<string, string> = {
  iris: 'models/iris/1/model.onnx',
  digits: 'models/digits/1/model.onnx',
  mlp: 'test/fixtures/models/mlp/1/model.onnx',
};
const SIZES = [1, 2, 4, 8, 16, 32, 64];

async function main(): Promise<void> {
  for (const [model, file] of Object.entries(MODELS)) {
    const session = await ort.InferenceSession.create(path.join(ROOT, file), {
      intraOpNumThreads: 1,
      interOpNumThreads: 1,
    });
    const input = session.inputNames[0];
    const meta = session.inputMetadata.find((m) => m.name === input);
    const width = meta?.isTensor ? Number(meta.shape[meta.shape.length - 1]) : NaN;
    const line: string[] = [];
    for (const rows of SIZES) {
      const feed = {
        [input]: new ort.Tensor('float32', Float32Array.from({ length: rows * width }, Math.random), [rows, width]),
      };
      for (let i = 0; i < Math.ceil(RUNS / 4); i++) await session.run(feed);
      const start = process.hrtime.bigint();
      for (let i = 0; i < RUNS; i++) await session.run(feed);
      const us = Number(process.hrtime.bigint() - start) / RUNS / 1000;
      line.push(`${rows}: ${(us / rows).toFixed(us / rows < 10 ? 1 : 0)}`);
    }
    console.log(`${model.padEnd(7)} µs per row at batch ${line.join(', ')}`);
    await session.release();
  }
}

main().catch((err: Error) => {
  console.error(err);
  process.exit(1);
});
