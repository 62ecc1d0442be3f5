import { ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { accessSync, constants } from 'node:fs';
import * as path from 'node:path';
import { HTTP_ADAPTER, ROOT } from './app';

/**
 * Runs the real entry point (src/main.ts) as its own process, as `npm start` does with the build; gRPC
 * on a port the system picks unless GRPC_PORT is given, so suites running side by side never collide.
 */
export function serve(env: Record<string, string>): ChildProcess {
  return spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', 'src/main.ts'], {
    cwd: ROOT,
    // ENV_FILE '': a developer's .env must not change what the tests run.
    env: {
      ...process.env,
      ENV_FILE: '',
      HTTP_ADAPTER,
      LOG_FORMAT: 'json',
      LOG_LEVEL: 'info',
      SHUTDOWN_GRACE_MS: '0',
      GRPC_PORT: '0',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** Calls `onLine` with each whole line the process writes, on stdout and stderr, as it comes. */
export function onOutputLines(child: ChildProcess, onLine: (line: string) => void): void {
  for (const stream of [child.stdout!, child.stderr!]) {
    let buffered = '';
    stream.on('data', (d: Buffer) => {
      buffered += d.toString();
      const parts = buffered.split('\n');
      buffered = parts.pop()!;
      parts.forEach(onLine);
    });
  }
}

export function exited(child: ChildProcess): Promise<{ code: number | null; stderr: string }> {
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, stderr })));
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
      .listen(0, '127.0.0.1', () => {
        const { port } = server.address() as { port: number };
        server.close(() => resolve(port));
      })
      .on('error', reject);
  });
}

export async function waitUntilReady(url: string): Promise<void> {
  const until = Date.now() + 30000;
  for (;;) {
    const ok = await fetch(url).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return;
    if (Date.now() > until) throw new Error(`${url} never became ready`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function waitFor(
  condition: () => boolean | Promise<boolean>,
  timeoutMs = 30000,
  what = 'the service',
): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The executable of that name on PATH, if there is one: the tools the suites drive (redis-server, promtool). */
export function onPath(name: string): string | undefined {
  return (process.env.PATH ?? '')
    .split(path.delimiter)
    .map((dir) => path.join(dir, name))
    .find((file) => {
      try {
        accessSync(file, constants.X_OK);
        return true;
      } catch {
        return false;
      }
    });
}
