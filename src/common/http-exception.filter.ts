import { ArgumentsHost, Catch, ExceptionFilter, HttpException, Logger } from '@nestjs/common';
import type { Request, Response } from 'express';
import { DomainError, ErrorCode, ErrorDetail } from './domain.errors';
import type { RequestContext } from './request-context';

const STATUS: Record<ErrorCode, number> = {
  INVALID_INPUT: 400,
  MALFORMED_JSON: 400,
  UNSUPPORTED_MEDIA_TYPE: 415,
  PAYLOAD_TOO_LARGE: 413,
  ROUTE_NOT_FOUND: 404,
  MODEL_NOT_FOUND: 404,
  MODEL_NOT_READY: 503,
  QUEUE_FULL: 503,
  DEADLINE_EXCEEDED: 504,
  // nginx's code for a client that closed the request; nobody reads it, but the log line does.
  CLIENT_CLOSED: 499,
  INFERENCE_FAILED: 500,
  INTERNAL: 500,
};

const CODE_OF_STATUS: Record<number, string> = {
  400: 'INVALID_INPUT',
  404: 'ROUTE_NOT_FOUND',
  405: 'METHOD_NOT_ALLOWED',
  413: 'PAYLOAD_TOO_LARGE',
  415: 'UNSUPPORTED_MEDIA_TYPE',
};

/** Seconds a client should wait before retrying: a loading model takes a while, a full queue drains fast. */
const RETRY_AFTER: Partial<Record<string, string>> = { MODEL_NOT_READY: '5', QUEUE_FULL: '1' };

export interface ErrorBody {
  statusCode: number;
  error: string;
  message: string;
  details: ErrorDetail[];
  requestId?: string;
}

function describe(exception: unknown): Omit<ErrorBody, 'requestId'> {
  if (exception instanceof DomainError) {
    return { statusCode: STATUS[exception.code], error: exception.code, message: exception.message, details: [...exception.details] };
  }
  if (exception instanceof HttpException) {
    const status = exception.getStatus();
    return { statusCode: status, error: CODE_OF_STATUS[status] ?? (status >= 500 ? 'INTERNAL' : 'HTTP_ERROR'), message: exception.message, details: [] };
  }
  return { statusCode: 500, error: 'INTERNAL', message: 'Internal server error', details: [] };
}

/**
 * The one place where errors become HTTP responses: a structured body for every failure, with the
 * request id, and never a stack trace. Real faults (5xx) are logged with their stack.
 */
@Catch()
export class HttpExceptionFilter implements ExceptionFilter {
  private readonly logger = new Logger('Errors');

  catch(exception: unknown, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    const res = http.getResponse<Response>();
    const req = http.getRequest<Request>();
    const body: ErrorBody = { ...describe(exception), requestId: (res.locals.context as RequestContext | undefined)?.requestId };
    if (body.statusCode >= 500) {
      this.logger.error(`${req.method} ${req.originalUrl}: ${(exception as Error)?.stack ?? String(exception)}`);
    }
    if (res.headersSent) return;
    const retryAfter = RETRY_AFTER[body.error];
    if (retryAfter) res.setHeader('Retry-After', retryAfter);
    res.status(body.statusCode).json(body);
  }
}
