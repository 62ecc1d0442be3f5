import * as net from 'node:net';
import { hostname } from 'node:os';
import { bundled, fixture, makeRepository } from './support/app';
import { Metadata } from '@grpc/grpc-js';
import { ipv6Available } from '../src/http/listen-host';
import { connect } from './support/grpc';
import { exited, freePort, onOutputLines, serve, waitFor, waitUntilReady } from './support/process';

describe('the service as a process', () => {
  it.each([
    [{ PORT: 'eighty' }, /Invalid configuration:\n\s+PORT must be an integer between 0 and 65535 \(got "eighty"\)/],
    [{ MAX_BATCH_SIZE: '-3', LOG_LEVEL: 'chatty' }, /MAX_BATCH_SIZE[\s\S]*LOG_LEVEL must be one of/],
    [{ MODEL_REPOSITORY: '/no/such/dir' }, /Start-up failed: MODEL_REPOSITORY \/no\/such\/dir is not a directory/],
  ])('refuses to start with %j, saying why', async (env, message) => {
    const { code, stderr } = await exited(serve(env));
    expect(code).toBe(1);
    expect(stderr).toMatch(message);
    expect(stderr).not.toMatch(/\n\s+at /);
  });

  it.each(['PORT', 'GRPC_PORT'])('refuses to start when %s is taken, saying so, with exit code 1', async (setting) => {
    const taken = net.createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = String((taken.address() as net.AddressInfo).port);
    const other = String(await freePort());
    try {
      const env = {
        HOST: '127.0.0.1',
        PORT: setting === 'PORT' ? port : other,
        GRPC_PORT: setting === 'PORT' ? '0' : port,
      };
      const { code, stderr } = await exited(serve(env));
      expect(code).toBe(1);
      expect(stderr).toMatch(/Start-up failed: .*EADDRINUSE/);
    } finally {
      taken.close();
    }
  });

  it('serves, and logs one structured JSON line per request with its latency, and faults with their request id', async () => {
    const port = await freePort();
    const repository = await makeRepository({ iris: bundled('iris'), gather: fixture('gather') });
    const child = serve({ PORT: String(port), HOST: '127.0.0.1', MODEL_REPOSITORY: repository });
    // Every line goes to stdout; stderr is read too, so that a line written there would fail the parse below.
    const lines: Record<string, unknown>[] = [];
    onOutputLines(child, (line) => lines.push(JSON.parse(line) as Record<string, unknown>));
    const done = exited(child);
    try {
      await waitFor(() => ['gather', 'iris'].every((m) => lines.some((l) => String(l.msg).startsWith(`model ${m} `))));
      const base = `http://127.0.0.1:${port}`;
      const ok = await fetch(`${base}/v1/models/iris/predict/batch`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-request-id': 'proc-1', 'user-agent': 'proc-test' },
        body: JSON.stringify({
          instances: [
            [5.1, 3.5, 1.4, 0.2],
            [6.3, 3.3, 6.0, 2.5],
          ],
        }),
      });
      expect(ok.status).toBe(200);
      const missing = await fetch(`${base}/nowhere`, { headers: { 'x-request-id': 'proc-2' } });
      expect(missing.status).toBe(404);
      // An index outside the gather fixture's table fails inside onnxruntime: a real fault, a 500.
      const fault = await fetch(`${base}/v1/models/gather/predict`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-request-id': 'proc-3' },
        body: JSON.stringify({ inputs: { idx: [7] } }),
      });
      expect(fault.status).toBe(500);
      expect(await fault.text()).not.toMatch(/\n\s+at /);
      const malformed = await fetch(`${base}/v1/models/iris/predict`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-request-id': 'proc-4' },
        body: '{"features":',
      });
      expect(malformed.status).toBe(400);

      await waitFor(
        () =>
          requestLine(lines, 'proc-4') !== undefined &&
          requestLine(lines, 'proc-3') !== undefined &&
          lines.some((l) => l.level === 'error'),
      );
      const errorLine = lines.find((l) => l.level === 'error')!;
      expect(errorLine).toMatchObject({
        msg: 'request failed',
        method: 'POST',
        status: 500,
        request_id: 'proc-3',
        url: '/v1/models/gather/predict',
        error: 'INFERENCE_FAILED',
      });
      expect((errorLine.err as { stack?: string }).stack).toMatch(/failed to run|INFERENCE_FAILED|Error/);
      // What every line carries, in the shape log shippers index without a mapping of their own.
      for (const line of lines) {
        expect(line).toMatchObject({
          level: expect.stringMatching(/^(trace|debug|info|warn|error|fatal)$/),
          time: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
          msg: expect.any(String),
          hostname: hostname(),
          pid: child.pid,
          service: { name: 'onnx-inference-service', version: expect.stringMatching(/^\d+\.\d+\.\d+/) },
        });
      }
      expect(requestLine(lines, 'proc-1')).toEqual({
        ...common(lines),
        level: 'info',
        msg: 'request',
        method: 'POST',
        route: '/v1/models/:model/predict/batch',
        status: 200,
        model: 'iris',
        version: 1,
        batch_size: 2,
        cache: 'MISS',
        duration_ms: expect.any(Number),
        request_id: 'proc-1',
        client_address: expect.stringMatching(/127\.0\.0\.1$/),
        user_agent: 'proc-test',
      });
      expect(requestLine(lines, 'proc-2')).toMatchObject({
        method: 'GET',
        route: 'unmatched',
        path: '/nowhere',
        status: 404,
        error: 'ROUTE_NOT_FOUND',
        request_id: 'proc-2',
      });
      // Refused before any handler ran: still the route it was sent to, and the code it was answered with.
      expect(requestLine(lines, 'proc-4')).toMatchObject({
        method: 'POST',
        route: '/v1/models/:model/predict',
        status: 400,
        error: 'MALFORMED_JSON',
      });
      expect(requestLine(lines, 'proc-3')).toMatchObject({ status: 500, error: 'INFERENCE_FAILED', model: 'gather' });
      // Start-up at info: one line per model and one for where it listens; Nest's route table is at debug.
      const startup = lines.filter((l) => l.msg !== 'request' && l.level === 'info').map((l) => String(l.msg));
      expect(startup.filter((m) => /^model \w+ READY in/.test(m)).sort()).toEqual([
        expect.stringMatching(/^model gather READY/),
        expect.stringMatching(/^model iris READY/),
      ]);
      expect(startup.filter((m) => m.startsWith('listening on http://'))).toHaveLength(1);
      expect(startup.filter((m) => /Mapped \{|dependencies initialized/.test(m))).toEqual([]);
    } finally {
      child.kill('SIGTERM');
      await done;
    }
  });
  it('listens on IPv6 and IPv4 alike by default, HTTP and gRPC (IPv4 alone, saying so, where there is no IPv6)', async () => {
    const port = await freePort();
    // No HOST: the default.
    const child = serve({ PORT: String(port), MODEL_REPOSITORY: await makeRepository({ iris: bundled('iris') }) });
    const done = exited(child);
    let stdout = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    try {
      await waitUntilReady(`http://127.0.0.1:${port}/health/ready`);
      await waitFor(() => /listening on \S+:\d+ \(gRPC/.test(stdout));
      const grpcPort = Number(/listening on \S+:(\d+) \(gRPC/.exec(stdout)![1]);
      const ipv6 = await ipv6Available();
      const hosts = ipv6 ? ['127.0.0.1', '[::1]'] : ['127.0.0.1'];
      if (ipv6) expect(stdout).toContain(`listening on http://[::]:${port}`);
      else expect(stdout).toMatch(/IPv6 is unavailable here: listening on 0\.0\.0\.0/);
      for (const host of hosts) {
        const res = await fetch(`http://${host}:${port}/v1/models/iris/predict`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ features: [6.3, 3.3, 6.0, 2.5] }),
        });
        expect({ host, status: res.status, label: ((await res.json()) as { label?: string }).label }).toEqual({
          host,
          status: 200,
          label: 'virginica',
        });
        const clients = connect(grpcPort, host);
        try {
          const health = await new Promise<Record<string, unknown>>((resolve, reject) =>
            clients.health.Check({ service: '' }, new Metadata(), {}, (err, answer) =>
              err ? reject(err) : resolve(answer),
            ),
          );
          expect({ host, health }).toEqual({ host, health: { status: 'SERVING' } });
        } finally {
          clients.close();
        }
      }
    } finally {
      child.kill('SIGTERM');
      await done;
    }
  });

  it('on SIGTERM under load: not ready at once, every accepted request answered, then exit 0', async () => {
    const port = await freePort();
    // These clients come back after SHUTTING_DOWN, so the server is never quiet: it closes at the timeout.
    const child = serve({
      PORT: String(port),
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      SHUTDOWN_GRACE_MS: '700',
      SHUTDOWN_TIMEOUT_MS: '3000',
    });
    const done = exited(child);
    const base = `http://127.0.0.1:${port}`;
    await waitUntilReady(`${base}/health/ready`);

    // Eight clients post back to back until the server stops taking connections.
    const outcomes: string[] = [];
    const body = JSON.stringify({ features: [6.3, 3.3, 6.0, 2.5] });
    // no-store: every request runs the model, so that shutdown has queued inference to drain, not cache hits.
    const headers = { 'content-type': 'application/json', 'cache-control': 'no-store' };
    let signalled = false;
    const client = async () => {
      for (;;) {
        try {
          const res = await fetch(`${base}/v1/models/iris/predict`, { method: 'POST', headers, body });
          const answer = (await res.json()) as { label?: string };
          // A 200 must be a whole, right answer; a 503 is a clean refusal while closing.
          outcomes.push(
            res.status === 200 && answer.label === 'virginica'
              ? 'ok'
              : res.status === 503
                ? 'refused'
                : `bad ${res.status}`,
          );
        } catch (err) {
          if (!signalled) throw err;
          outcomes.push('closed');
          return;
        }
      }
    };
    const clients = Array.from({ length: 8 }, client);
    await new Promise((r) => setTimeout(r, 300));
    const before = outcomes.length;
    signalled = true;
    child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 200));
    const duringGrace = await fetch(`${base}/health/ready`);
    expect(duringGrace.status).toBe(503);
    await Promise.all(clients);
    const { code } = await done;

    expect(code).toBe(0);
    expect(before).toBeGreaterThan(0);
    // Requests kept being answered during the grace period, and nothing else than these three happened.
    expect(outcomes.slice(before).filter((o) => o === 'ok').length).toBeGreaterThan(0);
    expect(outcomes.filter((o) => !['ok', 'refused', 'closed'].includes(o))).toEqual([]);
  });

  it('on SIGTERM under 16 clients: every request sent gets a whole answer (served, or 503 SHUTTING_DOWN), no reset, exit 0', async () => {
    const port = await freePort();
    const child = serve({ PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'info', SHUTDOWN_GRACE_MS: '500' });
    let stdout = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    const done = exited(child);
    const base = `http://127.0.0.1:${port}`;
    await waitUntilReady(`${base}/health/ready`);

    const outcomes: string[] = [];
    const refusals: Record<string, unknown>[] = [];
    const body = JSON.stringify({ features: [6.3, 3.3, 6.0, 2.5] });
    const headers = { 'content-type': 'application/json', 'cache-control': 'no-store' };
    let signalled = false;
    // Each client posts back to back; told SHUTTING_DOWN it goes elsewhere, as behind a load balancer.
    const client = async () => {
      for (;;) {
        try {
          const res = await fetch(`${base}/v1/models/iris/predict`, { method: 'POST', headers, body });
          const answer = (await res.json()) as { label?: string; error?: string };
          if (res.status === 200 && answer.label === 'virginica') {
            outcomes.push('ok');
            continue;
          }
          if (res.status === 503 && answer.error === 'SHUTTING_DOWN') {
            outcomes.push('shutting down');
            refusals.push({
              ...answer,
              connection: res.headers.get('connection'),
              retryAfter: res.headers.get('retry-after'),
            });
            return;
          }
          outcomes.push(`bad ${res.status} ${JSON.stringify(answer)}`);
        } catch (err) {
          const code = ((err as Error).cause as { code?: string } | undefined)?.code;
          if (!signalled) throw err;
          // Refused at connect: nothing was sent, so nothing was lost. Anything else cut a request off.
          outcomes.push(code === 'ECONNREFUSED' ? 'refused at connect' : `reset ${code}`);
          return;
        }
      }
    };
    const clients = Array.from({ length: 16 }, client);
    await new Promise((r) => setTimeout(r, 300));
    signalled = true;
    child.kill('SIGTERM');
    await Promise.all(clients);
    const { code } = await done;

    expect(outcomes.filter((o) => !['ok', 'shutting down', 'refused at connect'].includes(o))).toEqual([]);
    expect(code).toBe(0);
    expect(refusals.length).toBeGreaterThan(0);
    for (const refusal of refusals) {
      expect(refusal).toMatchObject({
        statusCode: 503,
        error: 'SHUTTING_DOWN',
        requestId: expect.any(String),
        connection: 'close',
        retryAfter: expect.stringMatching(/^\d+$/),
      });
    }
    expect(stdout).toMatch(/every accepted request answered/);
  });

  it('closes connections past MAX_CONNECTIONS on arrival, logs it and counts it, and serves again once they go', async () => {
    const port = await freePort();
    const child = serve({ PORT: String(port), HOST: '127.0.0.1', MAX_CONNECTIONS: '4' });
    let stdout = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    const done = exited(child);
    const base = `http://127.0.0.1:${port}`;
    try {
      await waitUntilReady(`${base}/health/ready`);
      // Let the readiness probes' keep-alive connections close, so that exactly these four are open.
      await new Promise((r) => setTimeout(r, 200));
      const open = (): Promise<net.Socket> =>
        new Promise((resolve, reject) => {
          const socket = net.connect(port, '127.0.0.1', () => resolve(socket)).on('error', reject);
        });
      const held = await Promise.all(Array.from({ length: 4 }, open));
      await new Promise((r) => setTimeout(r, 200));
      // The fifth is accepted by the kernel and closed by the server without a byte of answer.
      const fifth = await open();
      const answer = await new Promise<string>((resolve) => {
        let text = '';
        fifth.on('data', (d: Buffer) => (text += d.toString()));
        fifth.on('error', () => resolve(text));
        fifth.on('close', () => resolve(text));
        fifth.write('GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n');
      });
      expect(answer).toBe('');
      for (const socket of held) socket.destroy();
      await waitFor(async () => (await fetch(`${base}/health/live`).catch(() => undefined))?.status === 200);
      const metrics = await (await fetch(`${base}/metrics`)).text();
      expect(metrics).toMatch(/^http_connections_dropped_total [1-9]/m);
      expect(stdout).toMatch(/connection\(s\) closed on arrival: MAX_CONNECTIONS \(4\) are open/);
    } finally {
      child.kill('SIGTERM');
      await done;
    }
  });
});

function requestLine(lines: Record<string, unknown>[], id: string): Record<string, unknown> | undefined {
  return lines.find((l) => l.msg === 'request' && l.request_id === id);
}

/** The fields every line has, as this process wrote them. */
function common(lines: Record<string, unknown>[]): Record<string, unknown> {
  const first = lines[0];
  return { time: expect.any(String), pid: first.pid, hostname: first.hostname, service: first.service };
}
