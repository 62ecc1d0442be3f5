import { ConsoleLogger, INestApplication, LogLevel } from '@nestjs/common';
import { AppModule } from './app.module';
import { AppConfig, LogLevelName } from './config/app.config';
import { expressSetup } from './http/express';
import { fastifySetup } from './http/fastify';
import { applyPipeline } from './http/pipeline';

const LEVELS: Record<LogLevelName, LogLevel[]> = {
  fatal: ['fatal'],
  error: ['fatal', 'error'],
  warn: ['fatal', 'error', 'warn'],
  info: ['fatal', 'error', 'warn', 'log'],
  debug: ['fatal', 'error', 'warn', 'log', 'debug'],
  verbose: ['fatal', 'error', 'warn', 'log', 'debug', 'verbose'],
};

export function createLogger(config: AppConfig): ConsoleLogger {
  const json = config.LOG_FORMAT === 'json';
  return new ConsoleLogger({ json, colors: !json && process.stdout.isTTY, logLevels: LEVELS[config.LOG_LEVEL] });
}

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
