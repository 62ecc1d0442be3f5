import { LoggerService } from '@nestjs/common';
import type { NextFunction, Request, Response } from 'express';
import type { RequestContext } from '../common/request-context';

const elapsedMs = (start: bigint) => Number(process.hrtime.bigint() - start) / 1e6;

/**
 * Times every request, answers with `X-Process-Time` (ms), and logs one structured line when the
 * response is sent. This is Express middleware placed before the body parser rather than a Nest
 * interceptor, because an interceptor never sees the requests rejected before a handler runs
 * (malformed JSON, oversized bodies, unknown routes), and those are exactly the ones an operator
 * wants logged too. It runs first; the request context opened after it is read from
 * `res.locals.context` when the response is done.
 */
export function latencyMiddleware(logger: LoggerService) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const start = process.hrtime.bigint();

    // Headers cannot change once written, so the time is taken at the last moment before they go out.
    const writeHead = res.writeHead.bind(res) as (...args: unknown[]) => Response;
    res.writeHead = ((...args: unknown[]) => {
      res.setHeader('X-Process-Time', elapsedMs(start).toFixed(3));
      return writeHead(...args);
    }) as Response['writeHead'];

    res.on('finish', () => {
      const route = (req.route as { path?: string } | undefined)?.path;
      const context = res.locals.context as RequestContext | undefined;
      logger.log({
        msg: 'request',
        method: req.method,
        route: route ?? req.path.slice(0, 200),
        status: res.statusCode,
        model: context?.model,
        version: context?.version,
        batch_size: context?.batchSize,
        duration_ms: Number(elapsedMs(start).toFixed(3)),
        request_id: context?.requestId,
      }, 'HTTP');
    });
    next();
  };
}
