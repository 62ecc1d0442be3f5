import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { createApp } from './app.factory';
import { ConfigError, loadConfig } from './config/app.config';
import { ModelRegistry } from './models/model.registry';

async function bootstrap(): Promise<void> {
  const config = loadConfig();
  const app = await createApp(config);
  await app.listen(config.PORT, config.HOST);
  const logger = new Logger('Bootstrap');
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
