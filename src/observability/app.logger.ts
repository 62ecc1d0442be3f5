import { LoggerService } from '@nestjs/common';
import { trace } from '@opentelemetry/api';
import { Logger as NestPinoLogger, PinoLogger } from 'nestjs-pino';
import { hostname } from 'node:os';
import pino, { DestinationStream, Level, Logger as Pino } from 'pino';
import { prettyFactory } from 'pino-pretty';
import { APP_INFO } from '../app.info';
import { AppConfig, LogLevelName } from '../config/app.config';

/** LOG_LEVEL keeps Nest's names; pino calls Nest's `verbose` `trace`. */
const PINO_LEVEL: Record<LogLevelName, Level> = {
  fatal: 'fatal',
  error: 'error',
  warn: 'warn',
  info: 'info',
  debug: 'debug',
  verbose: 'trace',
};

/**
 * Nest's own start-up chatter (modules initialised, every route mapped): useful when something is
 * missing, noise on every start, so it is demoted to debug and start-up at info says only what the
 * service did (each model loaded, where it listens).
 */
const FRAMEWORK_CONTEXTS = new Set([
  'NestFactory',
  'InstanceLoader',
  'RoutesResolver',
  'RouterExplorer',
  'NestApplication',
]);

/** What traceFields answers outside any span: the line is then written as it was given, without a copy. */
const NO_SPAN: Record<string, string> = Object.freeze({});

/** pino's own merge, but for a line outside any span (most lines), which needs no copy of its fields. */
const mergeTraceFields = (line: object, fields: object): object =>
  fields === NO_SPAN ? line : Object.assign(fields, line);

let timeMs = -1;
let timeField = '';

/** pino's ISO-8601 time field, made once per millisecond: under load, many lines share one. */
function isoTime(): string {
  const now = Date.now();
  if (now !== timeMs) {
    timeMs = now;
    timeField = `,"time":"${new Date(now).toISOString()}"`;
  }
  return timeField;
}

/**
 * The ids of the span active where the line is written. Without a registered tracer there is never
 * an active span, and this costs one lookup in the no-op context manager.
 */
function traceFields(): Record<string, string> {
  const span = trace.getActiveSpan();
  if (!span) return NO_SPAN;
  const { traceId, spanId, traceFlags } = span.spanContext();
  return { trace_id: traceId, span_id: spanId, trace_flags: `0${traceFlags.toString(16)}`.slice(-2) };
}

/** Each line made readable as it is written, on the calling thread: a developer's terminal, not a hot path. */
function prettyStdout(): DestinationStream {
  const prettify = prettyFactory({
    colorize: Boolean(process.stdout.isTTY),
    translateTime: 'SYS:HH:MM:ss.l',
    ignore: 'pid,hostname,service',
  });
  return { write: (line: string) => void process.stdout.write(prettify(line)) };
}

/** Past this much text, waiting lines are written at once rather than at the end of the turn. */
const MAX_PENDING_CHARS = 64 * 1024;

/**
 * The lines written in one turn of the event loop, written to stdout together as the turn ends: under
 * load a turn answers many requests, and one write for their request lines costs what one line's did.
 * Each is still written within the turn that made it, and what is waiting when the process exits
 * (process.exit, an uncaught error) is written on the way out.
 */
export class TurnBatchedLines implements DestinationStream {
  private pending = '';

  constructor(private readonly out: { write(text: string): unknown }) {}

  write(line: string): void {
    if (this.pending === '') setImmediate(this.flush);
    this.pending += line;
    if (this.pending.length >= MAX_PENDING_CHARS) this.flush();
  }

  readonly flush = (): void => {
    if (this.pending === '') return;
    const text = this.pending;
    this.pending = '';
    this.out.write(text);
  };
}

let stdoutLines: TurnBatchedLines | undefined;

/** The one batched stdout of the process, flushed when it exits. */
function batchedStdout(): TurnBatchedLines {
  if (!stdoutLines) {
    const lines = new TurnBatchedLines(process.stdout);
    process.on('exit', lines.flush);
    stdoutLines = lines;
  }
  return stdoutLines;
}

/**
 * The service's one pino logger. JSON: one object a line, the level by name, ISO-8601 time, `msg`
 * always a string, the host, service and version on every line (what Loki, Elasticsearch and
 * OpenSearch index without a mapping of their own). Text: pino-pretty for a developer's terminal,
 * with colours only when stdout is one.
 */
export function createPino(config: AppConfig, destination?: DestinationStream): Pino {
  // process.stdout rather than pino's own destination: that one, written synchronously, sleeps the
  // whole event loop while a slow reader keeps the pipe full, where Node's stream queues the rest.
  const stream = destination ?? (config.LOG_FORMAT === 'text' ? prettyStdout() : batchedStdout());
  return pino(
    {
      level: PINO_LEVEL[config.LOG_LEVEL],
      messageKey: 'msg',
      timestamp: isoTime,
      formatters: { level: (label) => ({ level: label }) },
      base: { pid: process.pid, hostname: hostname(), service: { name: APP_INFO.name, version: APP_INFO.version } },
      mixin: traceFields,
      mixinMergeStrategy: mergeTraceFields,
    },
    stream,
  );
}

/**
 * Nest's LoggerService over pino, through nestjs-pino's Logger, which maps Nest's calls (a context
 * last, an Error or an object first, the exception handlers' stack argument) onto pino's. It is given
 * the pino logger itself rather than nestjs-pino's PinoLogger: that one keeps a single root logger per
 * process, which would make every application in one process (the tests) share the first one's
 * level and stream.
 */
export class AppLogger extends NestPinoLogger implements LoggerService {
  constructor(readonly pino: Pino) {
    super(pino as unknown as PinoLogger, {});
  }

  override log(message: unknown, ...optionalParams: unknown[]): void {
    const context = optionalParams[optionalParams.length - 1];
    if (typeof context === 'string' && FRAMEWORK_CONTEXTS.has(context)) super.debug(message, ...optionalParams);
    else super.log(message, ...optionalParams);
  }
}

export function createLogger(config: AppConfig, destination?: DestinationStream): AppLogger {
  return new AppLogger(createPino(config, destination));
}
