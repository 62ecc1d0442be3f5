import { ChildProcess, spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { createServer } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { HTTP_ADAPTER, ROOT } from './support/app';

/**
 * The service as a process with API keys, its every log line read (verbose), while keys are
 * used, refused, sent where they do not belong and rotated: no key, in force or not, may appear
 * in any line.
 */

const ENV_KEY = 'env-key-aaaaaaaaaaaaaaaaaaaa';
const FILE_KEY = 'file-key-bbbbbbbbbbbbbbbbbbbb';
const ROTATED_KEY = 'rotated-key-cccccccccccccccccc';
const WRONG_KEY = 'wrong-key-dddddddddddddddddddd';
const ALL = [ENV_KEY, FILE_KEY, ROTATED_KEY, WRONG_KEY];

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
      .listen(0, '127.0.0.1', () => {
        const { port } = server.address() as { port: number };
        server.close(() => resolve(port));
      })
      .on('error', reject);
  });
}

async function waitFor(check: () => boolean | Promise<boolean>): Promise<void> {
  while (!(await check())) await new Promise((resolve) => setTimeout(resolve, 50));
}

describe('API keys never reach a log line', () => {
  let child: ChildProcess;
  let output = '';
  let exited: Promise<number | null>;

  afterAll(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });

  it('logs key loads, uses, refusals and a rotation without any key', async () => {
    const port = await freePort();
    const keyFile = path.join(await fs.mkdtemp(path.join(os.tmpdir(), 'keys-')), 'api-keys');
    await fs.writeFile(keyFile, `${FILE_KEY}\n`);
    child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', 'src/main.ts'], {
      cwd: ROOT,
      env: {
        ...process.env,
        HTTP_ADAPTER,
        PORT: String(port),
        HOST: '127.0.0.1',
        LOG_LEVEL: 'verbose',
        LOG_FORMAT: 'json',
        SHUTDOWN_GRACE_MS: '0',
        GRPC_PORT: '0',
        API_KEYS: `${ENV_KEY},${WRONG_KEY.replace('wrong', 'admin')}:admin`,
        API_KEYS_FILE: keyFile,
        API_KEYS_RELOAD_MS: '100',
        RATE_LIMIT_RPM: '1000',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
    await waitFor(() => output.includes('models loaded'));
    const base = `http://127.0.0.1:${port}`;
    const call = (p: string, headers: Record<string, string> = {}, body?: string) =>
      fetch(`${base}${p}`, {
        method: body === undefined ? 'GET' : 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body,
      });

    expect((await call('/v1/models', { authorization: `Bearer ${ENV_KEY}` })).status).toBe(200);
    expect(
      (await call('/v1/models/iris/predict', { 'x-api-key': FILE_KEY }, '{"features":[5.1,3.5,1.4,0.2]}')).status,
    ).toBe(200);
    expect((await call('/v1/models', { authorization: `Bearer ${WRONG_KEY}` })).status).toBe(401);
    expect((await call('/v1/models', { 'x-api-key': WRONG_KEY })).status).toBe(401);
    expect((await call(`/v1/models?api_key=${ENV_KEY}`)).status).toBe(401);
    expect((await call(`/nowhere?key=${FILE_KEY}`, { authorization: `Bearer ${ENV_KEY}` })).status).toBe(404);
    expect((await call('/v1/models', { authorization: `Bearer ${WRONG_KEY.replace('wrong', 'admin')}` })).status).toBe(
      403,
    );
    expect(
      (await call(`/v1/models/iris/predict?token=${ENV_KEY}`, { authorization: `Bearer ${ENV_KEY}` }, '{"features":'))
        .status,
    ).toBe(400);

    await fs.writeFile(keyFile, `${ROTATED_KEY}\n`);
    await waitFor(async () => (await call('/v1/models', { authorization: `Bearer ${ROTATED_KEY}` })).status === 200);
    expect((await call('/v1/models', { authorization: `Bearer ${FILE_KEY}` })).status).toBe(401);
    await waitFor(() => output.includes('API keys reloaded'));

    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    // The lines are there (so the check below reads something), and none holds a key or a part of one.
    expect(output).toMatch(/"status":401/);
    expect(output).toMatch(/API keys: 2 from API_KEYS, 1 from API_KEYS_FILE/);
    for (const key of [...ALL, WRONG_KEY.replace('wrong', 'admin')]) {
      for (const part of [key, key.slice(0, 12), key.slice(-12)])
        expect({ part, found: output.includes(part) }).toEqual({ part, found: false });
    }
  });
});
