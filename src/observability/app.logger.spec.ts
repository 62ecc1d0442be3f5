import { Logger } from '@nestjs/common';
import { context, propagation, trace } from '@opentelemetry/api';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { hostname } from 'node:os';
import { APP_INFO } from '../app.info';
import { loadConfig } from '../config/app.config';
import { createLogger } from './app.logger';

/** A logger writing into an array, one parsed object per line, as a log shipper reads them. */
function capture(env: Record<string, string> = {}) {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger(loadConfig({ LOG_FORMAT: 'json', ...env }), {
    write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>),
  });
  return { logger, lines };
}

describe('the application logger', () => {
  it('writes the level by name, ISO time, msg as a string, the host, service and version, and the context', () => {
    const { logger, lines } = capture();
    logger.log('model iris READY', 'ModelRegistry');
    logger.warn({ msg: 'slow', model: 'iris' }, 'Cache');
    expect(lines).toEqual([
      {
        level: 'info',
        time: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
        pid: process.pid,
        hostname: hostname(),
        service: { name: APP_INFO.name, version: APP_INFO.version },
        context: 'ModelRegistry',
        msg: 'model iris READY',
      },
      expect.objectContaining({ level: 'warn', context: 'Cache', msg: 'slow', model: 'iris' }),
    ]);
  });

  it("keeps LOG_LEVEL's names (verbose is pino's trace) and demotes Nest's start-up chatter to debug", () => {
    const info = capture();
    info.logger.log('Mapped {/v1/models, GET} route', 'RouterExplorer');
    info.logger.log('AppModule dependencies initialized', 'InstanceLoader');
    info.logger.debug('hidden', 'X');
    expect(info.lines).toEqual([]);
    const verbose = capture({ LOG_LEVEL: 'verbose' });
    verbose.logger.log('Mapped {/v1/models, GET} route', 'RouterExplorer');
    verbose.logger.verbose('detail', 'X');
    expect(verbose.lines.map((l) => [l.level, l.msg])).toEqual([
      ['debug', 'Mapped {/v1/models, GET} route'],
      ['trace', 'detail'],
    ]);
  });

  it('serves as Nest’s Logger, an error with its stack under err', () => {
    const { logger, lines } = capture();
    Logger.overrideLogger(logger);
    try {
      new Logger('Errors').error({ msg: 'request failed', err: new Error('boom') });
    } finally {
      Logger.overrideLogger(false);
    }
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 'error', context: 'Errors', msg: 'request failed' });
    expect(lines[0].err).toMatchObject({ type: 'Error', message: 'boom', stack: expect.stringContaining('boom') });
  });

  it('adds the ids of the span active where a line is written, and nothing without one', () => {
    const { logger, lines } = capture();
    // A real tracer provider, registered as an application's would be: its context manager carries the span.
    const provider = new NodeTracerProvider();
    provider.register();
    try {
      const span = provider.getTracer('test').startSpan('request');
      context.with(trace.setSpan(context.active(), span), () => logger.log('inside', 'T'));
      span.end();
      logger.log('outside', 'T');
      const ids = span.spanContext();
      expect(lines[0]).toMatchObject({ trace_id: ids.traceId, span_id: ids.spanId, trace_flags: '01' });
    } finally {
      trace.disable();
      context.disable();
      propagation.disable();
    }
    expect(lines[0].msg).toBe('inside');
    expect(lines[0].trace_id).toMatch(/^[0-9a-f]{32}$/);
    expect(lines[1].msg).toBe('outside');
    expect(lines[1]).not.toHaveProperty('trace_id');
  });
});
