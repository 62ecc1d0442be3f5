import 'reflect-metadata';
import { INestApplication, Logger } from '@nestjs/common';
import { createApp } from './app.factory';
import { AppConfig, ConfigError, loadConfig } from './config/app.config';
import { loadEnvFile } from './config/env-file';
import { LifecycleService } from './health/lifecycle.service';
import { ModelRegistry } from './models/model.registry';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Graceful shutdown, in the order Kubernetes needs it: readiness turns 503 at once; requests are
 * still accepted for SHUTDOWN_GRACE_MS while endpoints are updated; then the server stops accepting
 * and waits for every accepted request (queued inference included) up to SHUTDOWN_TIMEOUT_MS;
 * then sessions are released and the process exits 0. An interactive Ctrl-C skips the grace period.
 */
function handleSignals(app: INestApplication, config: AppConfig, logger: Logger): void {
  let stopping = false;
  const stop = async (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    app.get(LifecycleService).beginShutdown();
    const grace = signal === 'SIGINT' ? 0 : config.SHUTDOWN_GRACE_MS;
    logger.log(`${signal}: not ready; accepting requests for ${grace} ms more, then draining`);
    await sleep(grace);
    const closed = app.close().then(() => 'closed' as const);
    const outcome = await Promise.race([closed, sleep(config.SHUTDOWN_TIMEOUT_MS).then(() => 'timeout' as const)]);
    if (outcome === 'timeout') {
      logger.error(
        `requests still running after SHUTDOWN_TIMEOUT_MS (${config.SHUTDOWN_TIMEOUT_MS} ms); exiting without them`,
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
  const config = loadConfig();
  const app = await createApp(config);
  const logger = new Logger('Bootstrap');
  handleSignals(app, config, logger);
  await app.listen(config.PORT, config.HOST);
  logger.log(`listening on http://${config.HOST}:${config.PORT} (Swagger UI at /docs)`);
  const registry = app.get(ModelRegistry);
  await registry.whenLoaded();
  const states = registry.list().map((m) => `${m.name}=${registry.stateOf(m).state}`);
  logger.log(`models loaded: ${states.join(', ') || 'none'}`);
}

bootstrap().catch((err: Error) => {
  // A configuration or repository problem is the operator's to fix: say what, without a stack.
  console.error(err instanceof ConfigError ? err.message : `Start-up failed: ${err.message}`);
  process.exit(1);
});
