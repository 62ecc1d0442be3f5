import { Logger } from '@nestjs/common';
import { context, propagation, trace } from '@opentelemetry/api';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { hostname } from 'node:os';
import { APP_INFO } from '../app.info';
import { loadConfig } from '../config/app.config';
import { createLogger, TurnBatchedLines } from './app.logger';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';

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

  it('writes the lines of one turn of the event loop together, in order, as the turn ends', async () => {
    const writes: string[] = [];
    const lines = new TurnBatchedLines({ write: (text: string) => writes.push(text) });
    lines.write('a\n');
    lines.write('b\n');
    expect(writes).toEqual([]);
    await new Promise((resolve) => setImmediate(resolve));
    expect(writes).toEqual(['a\nb\n']);
    lines.write('c\n');
    await new Promise((resolve) => setImmediate(resolve));
    expect(writes).toEqual(['a\nb\n', 'c\n']);
  });

  it('writes at once past the pending limit, without waiting for the turn to end', () => {
    const writes: string[] = [];
    const lines = new TurnBatchedLines({ write: (text: string) => writes.push(text) });
    const line = `${'x'.repeat(1023)}\n`;
    for (let i = 0; i < 64; i++) lines.write(line);
    expect(writes).toEqual([line.repeat(64)]);
  });

  it('writes what is waiting when the process exits, by process.exit or an uncaught error', () => {
    const logger = path.join(__dirname, 'app.logger.ts');
    const script = (end: string) =>
      `const { createLogger } = require(${JSON.stringify(logger)});` +
      `const { loadConfig } = require(${JSON.stringify(path.join(__dirname, '../config/app.config.ts'))});` +
      `const log = createLogger(loadConfig({ LOG_FORMAT: 'json' }));` +
      `log.log('last words', 'T'); ${end}`;
    for (const [end, status] of [
      ['process.exit(3);', 3],
      ["throw new Error('boom');", 1],
    ] as const) {
      const run = spawnSync(process.execPath, ['-r', 'ts-node/register/transpile-only', '-e', script(end)], {
        encoding: 'utf8',
      });
      expect(run.status).toBe(status);
      expect(run.stdout).toContain('"msg":"last words"');
    }
  });
});
