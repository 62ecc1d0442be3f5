import { INestApplication } from '@nestjs/common';
import { AppModule } from './app.module';
import { AppConfig } from './config/app.config';
import { expressSetup } from './http/express';
import { fastifySetup } from './http/fastify';
import { withListenHost } from './http/listen-host';
import { applyPipeline } from './http/pipeline';
import { createLogger } from './observability/app.logger';

/**
 * Builds the application with everything but listening, for main.ts and the end-to-end tests
 * alike, on the HTTP adapter HTTP_ADAPTER names. Everything past the adapter is shared. The
 * application's AppConfig holds the address it listens on (see withListenHost).
 */
export async function createApp(settings: AppConfig): Promise<INestApplication> {
  const logger = createLogger(settings);
  const { config, fellBack } = await withListenHost(settings);
  if (fellBack)
    logger.warn(`IPv6 is unavailable here: listening on ${config.HOST} (IPv4 only) rather than :: (HOST)`, 'Bootstrap');
  const adapter = config.HTTP_ADAPTER === 'fastify' ? fastifySetup : expressSetup;
  const app = await adapter.create(AppModule.forRoot(config), config, logger);
  applyPipeline(app, config, logger, adapter);
  return app;
}
