import { ChildProcess, spawn } from 'node:child_process';
import { createClient } from '@keyv/redis';
import { freePort, onPath, waitFor } from './process';

/**
 * Real Redis for the tests. REDIS_URL, when set, is used for the tests that only need a Redis;
 * otherwise, and always for the tests that kill and restart it, a redis-server from PATH is
 * started on a free port. Without either, Redis tests are skipped with a visible message, except
 * under CI=true, where a missing Redis is a failure (.ci/run installs one).
 */

export const REDIS_SERVER = onPath('redis-server');

/** A redis-server of the test's own, which it may stop and start again on the same port. */
export class OwnRedis {
  private child?: ChildProcess;

  private constructor(readonly port: number) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** On the given port, or a free one. */
  static async start(port?: number): Promise<OwnRedis> {
    const redis = new OwnRedis(port ?? (await freePort()));
    await redis.start();
    return redis;
  }

  async start(): Promise<void> {
    const child = spawn(
      REDIS_SERVER!,
      ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      { stdio: 'ignore' },
    );
    this.child = child;
    await waitFor(() => ping(this.url), 10000, `redis-server on port ${this.port}`);
  }

  /** SIGKILL: Redis goes away as in a crash, without closing its connections politely. */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    const gone = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await gone;
  }
}

export async function ping(url: string): Promise<boolean> {
  const client = createClient({ url, socket: { reconnectStrategy: false, connectTimeout: 1000 } });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return (await client.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    if (client.isOpen) client.destroy();
  }
}

/** Redis keys under a prefix, read with SCAN so a shared Redis is not blocked. */
export async function keysUnder(url: string, prefix: string): Promise<string[]> {
  const client = createClient({ url });
  await client.connect();
  try {
    const keys: string[] = [];
    for await (const batch of client.scanIterator({ MATCH: `${prefix}*`, COUNT: 1000 })) keys.push(...batch);
    return keys;
  } finally {
    client.destroy();
  }
}

/** `describe` when `available`; otherwise a skipped block that says why, or a failing test under CI. */
export function describeWithRedis(available: boolean, name: string, body: () => void): void {
  if (available) return describe(name, body);
  const why = 'no Redis: set REDIS_URL or put redis-server on PATH (Debian: apt-get install redis-server)';
  if (process.env.CI === 'true') {
    describe(name, () =>
      it('needs a Redis under CI', () => {
        throw new Error(why);
      }),
    );
    return;
  }
  console.warn(`SKIPPED "${name}": ${why}`);
  describe.skip(name, body);
}
