/**
 * `npm run bench:v2`: the Open Inference Protocol's JSON against its binary tensor form, on the
 * service alone (Fastify, batching on, the prediction cache off so that every request runs), for an
 * image-sized float input (the `image` fixture, 1×3×224×224 FP32) and for digits, at c=1 and c=8.
 * Reports requests/s and the service's CPU time per request (user + system of its process, worker
 * threads included, from /proc over the measured seconds only). Prints a table; writes nothing.
 * Target: binary ≥ 5× the JSON requests/s on the image model.
 *
 * Environment: BENCH_DURATION_S (seconds per cell, default 5). Expects dist/ to be current.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { bundled, fixture, makeRepository } from '../src/testing/model-repository';
import { LoadSpec, measureCell } from './load';
import { freePort, startChild, stopChild, waitUntil } from './processes';

const ROOT = path.resolve(__dirname, '..');
const DURATION_S = Number(process.env.BENCH_DURATION_S ?? 5) || 5;
const CONCURRENCIES = [1, 8];
const TICKS_PER_S = 100; // Linux's USER_HZ, in which /proc/<pid>/stat counts

/** User + system CPU seconds of a process so far. */
function cpuSeconds(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_S;
}

interface Tensor {
  name: string;
  datatype: string;
  shape: number[];
}

/** One request body in each form, for a model's single input with a batch of 1. */
function bodies(input: Tensor): { json: Buffer; binary: { body: Buffer; headerLength: number } } {
  const shape = [1, ...input.shape.slice(1)];
  const size = shape.reduce((a, b) => a * b, 1);
  // Pixel-like float32 values, as a client's float32 array serialises them to JSON.
  const values = Float32Array.from({ length: size }, (_, i) => ((i * 37) % 256) / 255);
  const json = Buffer.from(
    JSON.stringify({ inputs: [{ name: input.name, shape, datatype: input.datatype, data: Array.from(values) }] }),
  );
  const header = Buffer.from(
    JSON.stringify({
      inputs: [
        { name: input.name, shape, datatype: input.datatype, parameters: { binary_data_size: values.byteLength } },
      ],
      parameters: { binary_data_output: true },
    }),
  );
  const raw = Buffer.from(values.buffer, values.byteOffset, values.byteLength);
  return { json, binary: { body: Buffer.concat([header, raw]), headerLength: header.length } };
}

async function main(): Promise<void> {
  const repository = await makeRepository({ digits: bundled('digits'), image: fixture('image') });
  const port = await freePort();
  const baseUrl = `http://127.0.0.1:${port}`;
  const child = startChild('service', process.execPath, ['dist/main.js'], {
    cwd: ROOT,
    env: {
      ...process.env,
      PORT: String(port),
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      GRPC_PORT: '0',
      MODEL_REPOSITORY: repository,
      CACHE_ENABLED: 'false',
      // The image's JSON body is some 3 MB: the limit is raised so that JSON can be measured at all.
      BODY_LIMIT: '16mb',
    },
  });
  const rows: string[][] = [];
  try {
    await waitUntil(child, 'READY', 120_000, async () => {
      const res = await fetch(`${baseUrl}/v2/health/ready`).catch(() => undefined);
      return res?.status === 200;
    });
    for (const model of ['image', 'digits']) {
      const meta = (await (await fetch(`${baseUrl}/v2/models/${model}`)).json()) as { inputs: Tensor[] };
      const { json, binary } = bodies(meta.inputs[0]);
      const url = `${baseUrl}/v2/models/${model}/infer`;
      const forms = {
        json: { body: json, headers: { 'content-type': 'application/json' } },
        binary: {
          body: binary.body,
          headers: {
            'content-type': 'application/octet-stream',
            'inference-header-content-length': String(binary.headerLength),
          },
        },
      };
      for (const [form, { body, headers }] of Object.entries(forms)) {
        const check = await fetch(url, { method: 'POST', body, headers });
        if (check.status !== 200) throw new Error(`${model} ${form}: ${check.status} ${await check.text()}`);
        for (const connections of CONCURRENCIES) {
          const spec: LoadSpec = {
            url,
            connections,
            requests: [{ method: 'POST', path: new URL(url).pathname, headers, body }],
          };
          await measureCell(spec, 1, 0); // warm-up, not counted
          const before = cpuSeconds(child.pid);
          const stats = await measureCell(spec, DURATION_S, 0);
          const cpu = cpuSeconds(child.pid) - before;
          const cpuPerRequestMs = stats.responses_2xx ? (cpu * 1000) / stats.responses_2xx : NaN;
          rows.push([
            model,
            form,
            String(connections),
            `${(body.length / 1024).toFixed(0)} KiB`,
            stats.req_per_s.toFixed(1),
            cpuPerRequestMs.toFixed(3),
            stats.p50_ms.toFixed(2),
            String(stats.errors),
          ]);
          process.stderr.write(`${rows.at(-1)!.join('  ')}\n`);
        }
      }
    }
  } finally {
    await stopChild(child);
    await fs.promises.rm(repository, { recursive: true, force: true });
  }
  const head = ['model', 'form', 'c', 'body', 'req/s', 'CPU ms/req', 'p50 ms', 'errors'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  for (const r of [head, ...rows]) console.log(r.map((v, i) => v.padStart(widths[i])).join('  '));
  for (const model of ['image', 'digits']) {
    for (const c of CONCURRENCIES) {
      const rate = (form: string) =>
        Number(rows.find((r) => r[0] === model && r[1] === form && r[2] === String(c))?.[4]);
      console.log(`${model} c=${c}: binary / JSON requests/s = ${(rate('binary') / rate('json')).toFixed(2)}×`);
    }
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
