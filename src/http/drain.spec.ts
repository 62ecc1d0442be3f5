import { createServer, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DrainTracker } from './drain';

describe('DrainTracker', () => {
  let server: Server;
  let drain: DrainTracker;
  let url: string;
  let release: (() => void) | undefined;

  beforeEach(async () => {
    server = createServer((req, res) => {
      const answer = () => res.setHeader('Connection', 'close').end('ok');
      if (req.url === '/held') release = answer;
      else answer();
    });
    drain = new DrainTracker(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterEach(() => new Promise((resolve) => server.close(resolve)));

  const settle = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

  it('is not quiet while a request is unanswered, however long ago it came', async () => {
    const answered = fetch(`${url}/held`).then((r) => r.text());
    await settle(150);
    expect(drain.inFlight).toBe(1);
    expect(drain.quiet(100)).toBe(false);
    release!();
    expect(await answered).toBe('ok');
    await settle(150);
    expect(drain.inFlight).toBe(0);
    expect(drain.quiet(100)).toBe(true);
  });

  // The reset seen under load: every open connection had been answered `Connection: close` and was
  // gone, so nothing counted as recent, and the listener closed while a client was reconnecting.
  it('is not quiet just after an answer whose connection has closed', async () => {
    expect(await (await fetch(url)).text()).toBe('ok');
    for (let i = 0; drain.connections > 0 && i < 100; i++) await settle(10);
    expect(drain.connections).toBe(0);
    expect(drain.quiet(60000)).toBe(false);
    await settle(150);
    expect(drain.quiet(100)).toBe(true);
  });
});
