/**
 * Expensive bodies against the service (issue 13, item 1): good iris traffic and a /health/live probe,
 * first alone, then beside attacker connections that send the costliest 1 MB JSON bodies back to back;
 * then, with an API key over its RATE_LIMIT_RPM, how long the attacker waits for each 429.
 *
 *   npm run bench:edge -- [seconds] [adapter] [attackers]
 *
 * attackers: the attacker's connections (4). Past REFUSED_BODIES_PER_SECOND's 256 waiting refusals, more
 * connections are answered at once and cost the service what each refusal costs.
 *
 * Prints one line per phase: good requests/s and p50/p99, probe p99, event-loop lag, attacker answers, and
 * the CPU of the service, the attacker and the good client, which share the machine.
 */
import autocannon from 'autocannon';
import { fork } from 'node:child_process';
import * as http from 'node:http';
import * as path from 'node:path';
import { Child, cpuSeconds, freePort, startChild, stopChild, waitUntil } from './processes';

const ROOT = path.resolve(__dirname, '..');
const ATTACKER = process.argv[2] === '--attacker';
const SECONDS = Number(process.argv[2] ?? 10);
const ADAPTER = process.argv[3] ?? 'fastify';
const ATTACKERS = Number(process.argv[4] ?? 4);
const KEY = 'edge-bench-key-0123456789abcdef';
const MB = 1024 * 1024;

/**
 * The shapes that cost JSON.parse the most per byte, each just under 1 MB; and numbers, which every
 * global limit lets through: the longest array MAX_ARRAY_LENGTH allows, MAX_JSON_CONTAINERS instances, and
 * as many named features, far more values than the route's model takes.
 */
const ATTACKS: Record<string, string> = {
  deep: '['.repeat(MB - 16),
  'empty arrays': `{"instances":[${Array.from({ length: 262000 }, () => '[]').join(',')}]}`,
  'empty objects': `{"instances":[${Array.from({ length: 262000 }, () => '{}').join(',')}]}`,
  'long array': `{"features":[${Array.from({ length: 262000 }, () => '0.5').join(',')}]}`,
  'many instances': `{"instances":[${Array.from({ length: 16000 }, () => '[5.1,3.5,1.4,0.2,6.3,3.3,6.0,2.5]').join(',')}]}`,
  'named features': `{"features":{${Array.from({ length: 16000 }, (_, i) => `"feature_${i}":0.5`).join(',')}}}`,
  // Within what a batch of iris may hold, so read whole and parsed, but one instance of 10,000 values.
  'batch-sized instance': `{"instances":[[${Array(10000).fill('0.5').join(',')}]]}`,
};

/** Where each shape is sent: the default model's route, or its batch route for the shapes sized to it. */
const attackPath = (kind: string) => (kind.startsWith('batch') ? '/predict/batch' : '/predict');

function get(port: number, p: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: p, agent: false, headers }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on('error', reject);
  });
}

const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
};

/** One probe at a time, on a fresh connection each, as a kubelet sends them. */
async function probe(port: number, until: number): Promise<number[]> {
  const times: number[] = [];
  while (Date.now() < until) {
    const start = process.hrtime.bigint();
    await get(port, '/health/live').catch(() => undefined);
    times.push(Number(process.hrtime.bigint() - start) / 1e6);
    await new Promise((r) => setTimeout(r, 20));
  }
  return times;
}

function run(opts: autocannon.Options): Promise<autocannon.Result> {
  return new Promise((resolve, reject) => autocannon(opts, (err, result) => (err ? reject(err) : resolve(result))));
}

async function lagP99(port: number): Promise<number> {
  const text = (await get(port, '/metrics')).body;
  return Number(/^nodejs_eventloop_lag_p99_seconds (\S+)/m.exec(text)?.[1] ?? NaN) * 1000;
}

async function start(env: Record<string, string>): Promise<{ child: Child; port: number }> {
  const port = await freePort();
  const child = startChild('service', process.execPath, ['dist/main.js'], {
    cwd: ROOT,
    env: {
      ...process.env,
      HTTP_ADAPTER: ADAPTER,
      PORT: String(port),
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      SHUTDOWN_GRACE_MS: '0',
      ...env,
    },
  });
  await waitUntil(child, 'ready', 120000, async () => (await get(port, '/health/ready')).status === 200);
  return { child, port };
}

const good = (port: number, duration = SECONDS) =>
  run({
    url: `http://127.0.0.1:${port}`,
    connections: 8,
    duration,
    requests: [
      {
        method: 'POST',
        path: '/predict',
        headers: { 'content-type': 'application/json', 'cache-control': 'no-store' },
        body: JSON.stringify({ features: [6.3, 3.3, 6.0, 2.5] }),
      },
    ],
  });

/** What the attacker process reports: answers by status, time to each answer, and connections lost unanswered. */
interface AttackResult {
  readonly perSecond: number;
  readonly statuses: Record<string, number>;
  readonly p50: number;
  readonly p99: number;
  readonly lost: number;
  /** The attacker process's own CPU time over its run, in seconds: on one machine it takes cores from the rest. */
  readonly cpuS: number;
}

/**
 * The attacker runs in a process of its own, as it would on its own machine: in the bench's process, its
 * writes of 1 MB bodies took the event loop from the good client, which then measured itself.
 */
function attack(port: number, kind: string, headers: Record<string, string> = {}): Promise<AttackResult> {
  return new Promise((resolve, reject) => {
    const spec = JSON.stringify({ port, kind, headers, seconds: SECONDS, connections: ATTACKERS });
    const child = fork(__filename, ['--attacker', spec], { stdio: 'inherit' });
    child.once('message', (result) => resolve(result as AttackResult));
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? undefined : reject(new Error(`the attacker exited with ${code}`))));
  });
}

/**
 * `connections` connections (four unless told), each sending the next body as soon as the last was answered
 * (on a new connection when the service closed it), timed from the first byte sent to the answer's headers:
 * what a client waits.
 * node:http rather than autocannon, which after a connection closed under a request it had pipelined
 * timed later answers from that lost request's start.
 */
async function attacker(spec: {
  port: number;
  kind: string;
  headers: Record<string, string>;
  seconds: number;
  connections: number;
}) {
  const cpu0 = process.cpuUsage();
  const body = Buffer.from(ATTACKS[spec.kind]);
  const agent = new http.Agent({ keepAlive: true, maxSockets: spec.connections });
  const until = Date.now() + spec.seconds * 1000;
  const times: number[] = [];
  const statuses: Record<string, number> = {};
  let lost = 0;
  const send = () =>
    new Promise<void>((resolve) => {
      const start = process.hrtime.bigint();
      const req = http.request(
        {
          host: '127.0.0.1',
          port: spec.port,
          path: attackPath(spec.kind),
          method: 'POST',
          agent,
          headers: { 'content-type': 'application/json', 'content-length': body.length, ...spec.headers },
        },
        (res) => {
          times.push(Number(process.hrtime.bigint() - start) / 1e6);
          statuses[res.statusCode ?? 0] = (statuses[res.statusCode ?? 0] ?? 0) + 1;
          res.resume();
          res.on('end', resolve);
          res.on('error', () => resolve());
        },
      );
      req.on('error', () => {
        lost++;
        resolve();
      });
      req.end(body);
    });
  await Promise.all(
    Array.from({ length: spec.connections }, async () => {
      while (Date.now() < until) await send();
    }),
  );
  agent.destroy();
  const answered = Object.values(statuses).reduce((a, b) => a + b, 0);
  process.send?.({
    perSecond: answered / spec.seconds,
    statuses,
    p50: percentile(times, 50),
    p99: percentile(times, 99),
    lost,
    cpuS: cpuS(process.cpuUsage(cpu0)),
  } satisfies AttackResult);
  process.disconnect?.();
}

const attackLine = (bad: AttackResult) =>
  `attacker ${bad.perSecond.toFixed(0)} answers/s (${Object.entries(bad.statuses)
    .map(([s, n]) => `${s}x${n}`)
    .join(' ')}, ${bad.lost} lost) time to answer p50 ${ms(bad.p50)} p99 ${ms(bad.p99)}, ` +
  `attacker process ${(bad.cpuS / SECONDS).toFixed(2)} cores`;

const ms = (n: number) => `${n.toFixed(1)} ms`;
const cpuS = (usage: NodeJS.CpuUsage) => (usage.user + usage.system) / 1e6;

/** Good traffic and the probe alone for one phase: its rate, and the service's CPU time per good answer. */
interface Unattacked {
  readonly perSecond: number;
  readonly perGood: number;
}

async function unattacked(service: { child: Child; port: number }, label: string): Promise<Unattacked> {
  const cpu0 = cpuSeconds(service.child.pid);
  const client0 = process.cpuUsage();
  const [base, baseProbe] = await Promise.all([good(service.port), probe(service.port, Date.now() + SECONDS * 1000)]);
  const baseCpu = (cpuSeconds(service.child.pid) ?? NaN) - (cpu0 ?? NaN);
  const perGood = baseCpu / base.requests.total;
  console.log(
    `${label}: good ${base.requests.average.toFixed(0)} req/s p50 ${ms(base.latency.p50)} p99 ${ms(base.latency.p99)}; ` +
      `/health/live p99 ${ms(percentile(baseProbe, 99))}; lag p99 ${ms(await lagP99(service.port))}; ` +
      `service ${(baseCpu / SECONDS).toFixed(2)} cores, ${(perGood * 1e6).toFixed(0)} µs per answer; ` +
      `good client and probe ${(cpuS(process.cpuUsage(client0)) / SECONDS).toFixed(2)} cores`,
  );
  return { perSecond: base.requests.average, perGood };
}

async function main(): Promise<void> {
  console.log(`edge bench: ${ADAPTER}, ${SECONDS} s per phase, ${ATTACKERS} attacker connections`);
  const open = await start({});
  try {
    // Unattacked phases before and after each attacked one, which is compared with their mean: on a shared
    // machine the rate drifts over the minutes the phases take, and one reference at the start would
    // charge that drift to the attack.
    // Not measured: the first seconds of traffic also compile the service's code.
    await good(open.port, 3);
    let before = await unattacked(open, 'unattacked');
    for (const name of Object.keys(ATTACKS)) {
      const cpu0 = cpuSeconds(open.child.pid);
      const client0 = process.cpuUsage();
      const [ok, bad, probes] = await Promise.all([
        good(open.port),
        attack(open.port, name),
        probe(open.port, Date.now() + SECONDS * 1000),
      ]);
      const used = (cpuSeconds(open.child.pid) ?? NaN) - (cpu0 ?? NaN);
      const clientCores = cpuS(process.cpuUsage(client0)) / SECONDS;
      const lag = await lagP99(open.port);
      const after = await unattacked(open, 'unattacked');
      const reference = (before.perSecond + after.perSecond) / 2;
      // The service's CPU time per good answer unattacked: what the attacked phase subtracts to cost the attacker's.
      const perGood = (before.perGood + after.perGood) / 2;
      const perBad = (used - perGood * ok.requests.total) / (bad.perSecond * SECONDS);
      console.log(
        `attacked (${name}): good ${ok.requests.average.toFixed(0)} req/s, ` +
          `${((100 * ok.requests.average) / reference).toFixed(0)}% of the unattacked phases either side ` +
          `(${before.perSecond.toFixed(0)} and ${after.perSecond.toFixed(0)} req/s), ` +
          `p50 ${ms(ok.latency.p50)} p99 ${ms(ok.latency.p99)}; /health/live p99 ${ms(percentile(probes, 99))}; ` +
          `lag p99 ${ms(lag)}; ${attackLine(bad)}; service ${(used / SECONDS).toFixed(2)} cores, ` +
          `about ${(perBad * 1e6).toFixed(0)} µs per hostile body; good client and probe ${clientCores.toFixed(2)} cores`,
      );
      before = after;
    }
  } finally {
    await stopChild(open.child);
  }

  const limited = await start({ API_KEYS: KEY, RATE_LIMIT_RPM: '5' });
  try {
    const auth = { authorization: `Bearer ${KEY}` };
    // The key's budget, spent on requests that cost nothing to parse.
    for (let i = 0; i < 6; i++) await get(limited.port, '/v1/models', auth);
    const [bad, probes] = await Promise.all([
      attack(limited.port, 'empty arrays', auth),
      probe(limited.port, Date.now() + SECONDS * 1000),
    ]);
    // The service's own time for them: the attacker's clock also runs while its own process writes bodies.
    const metrics = (await get(limited.port, '/metrics', auth)).body;
    const series = 'http_request_duration_seconds_bucket{le="LE",method="POST",route="/predict",status="429"} ';
    const bucket = (le: string) => {
      const line = metrics.split('\n').find((l) => l.startsWith(series.replace('LE', le)));
      return Number(line?.split(' ')[1] ?? NaN);
    };
    const within = (le: string) => `${((100 * bucket(le)) / bucket('+Inf')).toFixed(1)}% within ${Number(le) * 1e3} ms`;
    console.log(
      `key over its limit, 1 MB bodies: ${attackLine(bad)}; /health/live p99 ${ms(percentile(probes, 99))}; ` +
        `the service's time to its 429s: ${within('0.0005')}, ${within('0.005')}`,
    );
  } finally {
    await stopChild(limited.child);
  }
}

(ATTACKER ? attacker(JSON.parse(process.argv[3]) as Parameters<typeof attacker>[0]) : main()).catch((err: Error) => {
  console.error(err);
  process.exit(1);
});
