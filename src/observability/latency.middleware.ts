import { LoggerService } from '@nestjs/common';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { cacheOutcome } from '../cache/prediction-cache.middleware';
import { contextOf } from '../common/request-context';
import { MetricsService } from './metrics.service';
import { traceIds } from './tracing';

const elapsedMs = (start: bigint) => Number(process.hrtime.bigint() - start) / 1e6;

/**
 * Times every request, answers with `X-Process-Time` (ms), and logs one structured line when the
 * response is sent. This is middleware placed before body parsing rather than a Nest interceptor,
 * because an interceptor never sees the requests rejected before a handler runs (malformed JSON,
 * oversized bodies, unknown routes), and those are exactly the ones an operator wants logged too.
 * Written against Node's own request and response, so it serves under Express and Fastify alike.
 */
export function latencyMiddleware(logger: LoggerService, metrics: MetricsService) {
  return (req: IncomingMessage, res: ServerResponse, next: () => void): void => {
    const start = process.hrtime.bigint();

    // Headers cannot change once written, so the time is taken at the last moment before they go out.
    const writeHead = res.writeHead.bind(res) as (...args: unknown[]) => ServerResponse;
    res.writeHead = (...args: unknown[]) => {
      res.setHeader('X-Process-Time', elapsedMs(start).toFixed(3));
      return writeHead(...args);
    };

    res.on('finish', () => {
      const context = contextOf(req);
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      // The route label is the matched pattern, never the raw path: unmatched paths would be unbounded.
      metrics.observeHttp(
        req.method ?? 'UNKNOWN',
        context?.route ?? (req as { route?: { path?: string } }).route?.path ?? 'unmatched',
        res.statusCode,
        seconds,
      );
      logger.log(
        {
          msg: 'request',
          method: req.method,
          // Fastify's route is put in the context by a hook; Express leaves its own on the request.
          route:
            context?.route ??
            (req as { route?: { path?: string } }).route?.path ??
            (req.url ?? '').split('?')[0].slice(0, 200),
          status: res.statusCode,
          model: context?.served?.model,
          version: context?.served?.version,
          batch_size: context?.served?.batchSize,
          cache: cacheOutcome(context?.cache),
          duration_ms: Number(elapsedMs(start).toFixed(3)),
          request_id: context?.requestId,
          ...traceIds(context?.trace),
        },
        'HTTP',
      );
    });
    next();
  };
}
