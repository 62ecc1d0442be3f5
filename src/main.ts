import 'reflect-metadata';
import { INestApplication, Logger } from '@nestjs/common';
import type { Server } from 'node:http';
import { createApp } from './app.factory';
import { DrainTracker } from './http/drain';
import { hostInUrl } from './http/listen-host';
import { AppConfig, ConfigError, loadConfig } from './config/app.config';
import { loadEnvFile } from './config/env-file';
import { LifecycleService } from './health/lifecycle.service';
import { ModelRegistry } from './models/model.registry';
import { startTracing, Tracing } from './observability/tracing';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * How long no connection must have opened, had a request or an answer, or closed before the server
 * closes: clients told SHUTTING_DOWN have gone by then, those answered `Connection: close` have come back
 * to be told it, and one still idle after it sends nothing in that instant.
 */
const DRAIN_QUIET_MS = 1000;

/**
 * Quiet, and still quiet after the event loop's next poll phase. The check runs in a timer; a
 * connection the kernel has accepted meanwhile is only seen (its 'connection' event) in the poll
 * phase that follows, and closing the listener before then resets it with its request unread. The
 * second look runs from setImmediate, right after that poll phase, and the caller closes the listener
 * in the same turn, so only a client connecting within those few microseconds, after a second in
 * which nothing arrived, can find its connection reset.
 */
async function quietThroughPoll(drain: DrainTracker): Promise<boolean> {
  if (!drain.quiet(DRAIN_QUIET_MS)) return false;
  await new Promise((resolve) => setImmediate(resolve));
  return drain.quiet(DRAIN_QUIET_MS);
}

/**
 * Graceful shutdown, in the order Kubernetes needs it: readiness turns 503 at once, and every answer
 * from then on closes its connection; requests are still served for SHUTDOWN_GRACE_MS while endpoints
 * are updated; then draining: new requests get 503 SHUTTING_DOWN (unread, Connection: close) while the
 * accepted ones, queued inference included, finish. The server closes only once nothing is in flight
 * and nothing has happened on any connection for a moment, so no client is reset mid-request; past
 * SHUTDOWN_TIMEOUT_MS it closes anyway. Exit 0 only if no accepted request was cut, else 1 with how
 * many. An interactive Ctrl-C skips the grace period.
 */
function handleSignals(
  app: INestApplication,
  drain: DrainTracker,
  config: AppConfig,
  logger: Logger,
  tracing: Tracing | undefined,
): void {
  let stopping = false;
  const stop = async (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    const lifecycle = app.get(LifecycleService);
    lifecycle.beginShutdown();
    const grace = signal === 'SIGINT' ? 0 : config.SHUTDOWN_GRACE_MS;
    logger.log(`${signal}: not ready; accepting requests for ${grace} ms more, then draining`);
    await sleep(grace);
    lifecycle.beginDraining();
    const deadline = Date.now() + config.SHUTDOWN_TIMEOUT_MS;
    // Clients that keep coming back after SHUTTING_DOWN never let it be quiet: the listener then closes
    // a moment before the deadline, so that the answers it was giving as it closed still end in time.
    const closeBy = deadline - Math.min(DRAIN_QUIET_MS, config.SHUTDOWN_TIMEOUT_MS / 2);
    while (!(await quietThroughPoll(drain)) && Date.now() < closeBy) await sleep(20);
    // The listener closes here, in the turn the quiet was seen, and not inside app.close(): that runs
    // the modules' shutdown hooks first (gRPC waits there for its own calls), and connections
    // accepted meanwhile would be reset by the close that follows, their requests unread.
    const server = app.getHttpServer() as Server;
    const listenerClosed = new Promise<void>((resolve) => server.close(() => resolve()));
    const closed = listenerClosed.then(() => app.close()).then(() => 'closed' as const);
    const left = Math.max(0, deadline - Date.now());
    const outcome = await Promise.race([closed, sleep(left).then(() => 'timeout' as const)]);
    const cut = drain.inFlight;
    // The last requests' spans are still buffered: sent before the process goes.
    await tracing?.shutdown().catch((err: Error) => logger.warn(`traces not flushed: ${err.message}`));
    if (outcome === 'timeout' || cut > 0) {
      logger.error(
        `${cut} accepted request(s) not answered within SHUTDOWN_TIMEOUT_MS (${config.SHUTDOWN_TIMEOUT_MS} ms); exiting without them`,
      );
      process.exit(1);
    }
    logger.log('every accepted request answered; sessions released');
    process.exit(0);
  };
  process.once('SIGTERM', (s) => void stop(s));
  process.once('SIGINT', (s) => void stop(s));
}

async function bootstrap(): Promise<void> {
  loadEnvFile();
  // Before the application is made: the pipeline installs the request span only when tracing is on.
  const tracing = startTracing();
  const app = await createApp(loadConfig());
  // HOST as the application will listen on it: the default `::` falls back to IPv4 where there is no IPv6.
  const config = app.get(AppConfig);
  const logger = new Logger('Bootstrap');
  handleSignals(app, new DrainTracker(app.getHttpServer() as Server), config, logger, tracing);
  try {
    await app.listen(config.PORT, config.HOST);
  } catch (err) {
    // The inference workers are stopped before the process exits: exiting with them still running
    // aborts it inside onnxruntime's binding, and the exit code would no longer say what happened.
    await app.close().catch(() => undefined);
    throw err;
  }
  logger.log(`listening on http://${hostInUrl(config.HOST)}:${config.PORT} (Swagger UI at /docs)`);
  const registry = app.get(ModelRegistry);
  await registry.whenLoaded();
  const states = registry.list().map((m) => `${m.name}=${registry.stateOf(m).state}`);
  // Each model has had its own line at info; this one is for whoever follows start-up closely.
  logger.debug(`models loaded: ${states.join(', ') || 'none'}`);
}

bootstrap().catch((err: Error) => {
  // A configuration or repository problem is the operator's to fix: say what, without a stack.
  console.error(err instanceof ConfigError ? err.message : `Start-up failed: ${err.message}`);
  process.exit(1);
});
