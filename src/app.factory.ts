import { INestApplication } from '@nestjs/common';
import { AppModule } from './app.module';
import { AppConfig } from './config/app.config';
import { expressSetup } from './http/express';
import { fastifySetup } from './http/fastify';
import { applyPipeline } from './http/pipeline';
import { createLogger } from './observability/app.logger';

/**
 * Builds the application with everything but listening, for main.ts and the end-to-end tests
 * alike, on the HTTP adapter HTTP_ADAPTER names. Everything past the adapter is shared.
 */
export async function createApp(config: AppConfig): Promise<INestApplication> {
  const logger = createLogger(config);
  const adapter = config.HTTP_ADAPTER === 'fastify' ? fastifySetup : expressSetup;
  const app = await adapter.create(AppModule.forRoot(config), config, logger);
  applyPipeline(app, config, logger, adapter);
  return app;
}
