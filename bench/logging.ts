/**
 * What the request log line costs: the service's CPU time per request with LOG_LEVEL=info (one JSON
 * line per request, written to a pipe as a container runtime reads it) against LOG_LEVEL=warn (no
 * request lines), on iris's single-instance route. Both services run side by side and their cells
 * alternate, so that a change in the machine's load falls on both alike; the figures are the median
 * of each round's difference (info less warn), and the ratio of the medians.
 *
 *   npm run build && node -r ts-node/register/transpile-only bench/logging.ts
 *
 * Settings (environment): LOGGING_ROUNDS (5 cells per level), LOGGING_SECONDS (5 per cell),
 * LOGGING_WARMUP_SECONDS (3 before each cell), LOGGING_CONNECTIONS (32).
 */
import * as path from 'node:path';
import { measureCpuCell } from './load';
import { freePort, startChild, stopAll, waitUntil } from './processes';

const ROOT = path.resolve(__dirname, '..');
const LEVELS = ['info', 'warn'] as const;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function start(level: (typeof LEVELS)[number]) {
  const port = await freePort();
  const child = startChild(`service LOG_LEVEL=${level}`, process.execPath, ['dist/main.js'], {
    cwd: ROOT,
    env: {
      ...process.env,
      ENV_FILE: '',
      PORT: String(port),
      HOST: '127.0.0.1',
      GRPC_PORT: '0',
      LOG_LEVEL: level,
      LOG_FORMAT: 'json',
      // Every request runs the model, as the bench's `on` target does.
      CACHE_ENABLED: 'false',
    },
  });
  const baseUrl = `http://127.0.0.1:${port}`;
  await waitUntil(child, 'ready', 60000, () => fetch(`${baseUrl}/health/ready`).then((r) => r.ok));
  return { level, child, baseUrl };
}

async function main(): Promise<void> {
  const rounds = Number(process.env.LOGGING_ROUNDS ?? 5);
  const seconds = Number(process.env.LOGGING_SECONDS ?? 5);
  const connections = Number(process.env.LOGGING_CONNECTIONS ?? 32);
  const warmup = Number(process.env.LOGGING_WARMUP_SECONDS ?? 3);
  const services = [];
  for (const level of LEVELS) services.push(await start(level));
  const perRequestMs: Record<string, number[]> = { info: [], warn: [] };
  const rates: Record<string, number[]> = { info: [], warn: [] };
  for (let round = 0; round < rounds; round++) {
    // Alternating which goes first, so that neither always follows the other's load.
    const order = round % 2 === 0 ? services : [...services].reverse();
    for (const s of order) {
      const cell = await measureCpuCell(
        {
          url: s.baseUrl,
          connections,
          requests: [
            {
              method: 'POST',
              path: '/v1/models/iris/predict',
              headers: { 'content-type': 'application/json' },
              body: JSON.stringify({ features: [6.3, 3.3, 6.0, 2.5] }),
            },
          ],
        },
        seconds,
        warmup,
        s.child.pid,
      );
      if (cell.errors > 0 || cell.cpu_ms_per_request === null) throw new Error(`${s.level}: ${JSON.stringify(cell)}`);
      perRequestMs[s.level].push(cell.cpu_ms_per_request);
      rates[s.level].push(cell.req_per_s);
    }
  }
  const info = median(perRequestMs.info);
  const warn = median(perRequestMs.warn);
  const differences = perRequestMs.info.map((ms, i) => ms - perRequestMs.warn[i]);
  console.log(
    JSON.stringify(
      {
        route: 'POST /v1/models/iris/predict',
        connections,
        cells: perRequestMs,
        req_per_s: rates,
        cpu_us_per_request: { info: Math.round(info * 1000), warn: Math.round(warn * 1000) },
        logging_cpu_us_per_request: Math.round(median(differences) * 1000),
        round_differences_us: differences.map((d) => Math.round(d * 1000)),
        ratio_info_to_warn: Math.round((info / warn) * 1000) / 1000,
      },
      null,
      2,
    ),
  );
}

main()
  .catch((err: Error) => {
    console.error(err.stack ?? err.message);
    process.exitCode = 1;
  })
  .finally(() => stopAll());
