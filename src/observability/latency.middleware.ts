import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger as Pino } from 'pino';
import { cacheOutcome } from '../cache/prediction-cache.middleware';
import { contextOf } from '../common/request-context';
import { MetricsService } from './metrics.service';
import { traceIds } from './tracing';

const elapsedMs = (start: bigint) => Number(process.hrtime.bigint() - start) / 1e6;

/** The matched route pattern of a request, as its adapter knows it (src/http/). */
export type RouteOf = (req: IncomingMessage) => string | undefined;

/** At most this much of what a client sends (its path, its User-Agent) is copied into a line. */
const MAX_ECHOED = 200;

/**
 * Times every request, answers with `X-Process-Time` (ms) and `X-Model-Version` (the version that
 * ran, where one did), and logs one structured line when the
 * response is sent. This is middleware placed before body parsing rather than a Nest interceptor,
 * because an interceptor never sees the requests rejected before a handler runs (malformed JSON,
 * oversized bodies, unknown routes), and those are exactly the ones an operator wants logged too.
 * Written against Node's own request and response, so it serves under Express and Fastify alike.
 */
export function latencyMiddleware(logger: Pino, metrics: MetricsService, routeOf: RouteOf) {
  return (req: IncomingMessage, res: ServerResponse, next: () => void): void => {
    const start = process.hrtime.bigint();

    // Headers cannot change once written, so the time is taken at the last moment before they go out.
    const writeHead = res.writeHead.bind(res) as (...args: unknown[]) => ServerResponse;
    res.writeHead = (...args: unknown[]) => {
      res.setHeader('X-Process-Time', elapsedMs(start).toFixed(3));
      // Which version answered, on every route that ran a model: under traffic weights or a label
      // the caller cannot know it otherwise. Set here, in the one hook already on every answer.
      const served = contextOf(req)?.served;
      if (served) res.setHeader('X-Model-Version', String(served.version));
      return writeHead(...args);
    };

    // Once: a listener left on the answer after it fired kept the request's objects alive longer (see OpenedContext).
    res.once('finish', () => {
      const context = contextOf(req);
      const ms = elapsedMs(start);
      // The route is the matched pattern, never the raw path: unmatched paths would be unbounded labels.
      const route = routeOf(req);
      metrics.observeHttp(req.method ?? 'UNKNOWN', route ?? 'unmatched', res.statusCode, ms / 1000);
      if (!logger.isLevelEnabled('info')) return;
      const agent = req.headers['user-agent'];
      logger.info(
        {
          method: req.method,
          route: route ?? 'unmatched',
          // Only where no route matched, and without the query string, where a client may put a key.
          path: route === undefined ? (req.url ?? '').split('?')[0].slice(0, MAX_ECHOED) : undefined,
          status: res.statusCode,
          duration_ms: Math.round(ms * 1000) / 1000,
          request_id: context?.requestId,
          error: context?.error,
          model: context?.served?.model,
          version: context?.served?.version,
          batch_size: context?.served?.batchSize,
          cache: cacheOutcome(context?.cache),
          client_address: req.socket?.remoteAddress,
          user_agent: agent === undefined ? undefined : agent.slice(0, MAX_ECHOED),
          ...traceIds(context?.trace),
        },
        'request',
      );
    });
    next();
  };
}
