import { ArgumentsHost, Catch, ExceptionFilter, HttpException, Logger } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { DomainError, ErrorCode, ErrorDetail, RateLimitedError } from './domain.errors';
import { bodyUnread, closeWhenAnswered } from '../http/linger';
import { RefusalPacer } from '../http/refusal-pacer';
import { AnyRequest, contextOf, rawOf } from './request-context';

/** The HTTP status of each error code, after Triton's table (400/404/500/503, 504 for a deadline). */
export const HTTP_STATUS: Readonly<Record<ErrorCode, number>> = {
  INVALID_INPUT: 400,
  MALFORMED_JSON: 400,
  UNSUPPORTED_MEDIA_TYPE: 415,
  PAYLOAD_TOO_LARGE: 413,
  ROUTE_NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  // Any other 4xx a library raises keeps its own status; 400 stands for them in the documentation.
  HTTP_ERROR: 400,
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  RATE_LIMITED: 429,
  HEADERS_TOO_LARGE: 431,
  REQUEST_TIMEOUT: 408,
  MODEL_NOT_FOUND: 404,
  MODEL_NOT_READY: 503,
  // Triton answers a refused or failed repository request with 400.
  MODEL_CONTROL_DISABLED: 400,
  MODEL_LOAD_FAILED: 400,
  QUEUE_FULL: 503,
  DEADLINE_EXCEEDED: 504,
  SHUTTING_DOWN: 503,
  // nginx's code for a client that closed the request; nobody reads it, but the log line does.
  CLIENT_CLOSED: 499,
  INFERENCE_FAILED: 500,
  // The request was well formed and ran; its answer is what cannot be given.
  NON_FINITE_OUTPUT: 422,
  INTERNAL: 500,
};

/** The code of a 4xx raised outside the service (Nest's router, a body parser), where it has one of its own. */
const CODE_OF_STATUS: Partial<Record<number, ErrorCode>> = {
  400: 'INVALID_INPUT',
  404: 'ROUTE_NOT_FOUND',
  405: 'METHOD_NOT_ALLOWED',
  413: 'PAYLOAD_TOO_LARGE',
  415: 'UNSUPPORTED_MEDIA_TYPE',
};

/** Seconds a client should wait before retrying: a loading model takes a while, a full queue drains fast. */
const RETRY_AFTER: Partial<Record<ErrorCode, string>> = { MODEL_NOT_READY: '5', QUEUE_FULL: '1', SHUTTING_DOWN: '1' };

/** The body of every error answer of the v1 and default-model routes (ErrorResponseDto documents it). */
export interface ErrorBody {
  statusCode: number;
  error: ErrorCode;
  message: string;
  details: ErrorDetail[];
  requestId?: string;
}

/** The one way an error body is made: the status is the code's own unless a library gave another. */
export function errorBody(
  error: ErrorCode,
  message: string,
  details: readonly ErrorDetail[] = [],
  statusCode = HTTP_STATUS[error],
): ErrorBody {
  return { statusCode, error, message, details: [...details] };
}

/** Longest message taken from a framework's exception: the router's 404 names the whole path the client sent. */
const MAX_FRAMEWORK_MESSAGE = 200;
const bounded = (message: string) =>
  message.length > MAX_FRAMEWORK_MESSAGE ? `${message.slice(0, MAX_FRAMEWORK_MESSAGE)}... (cut short)` : message;

function describe(exception: unknown): ErrorBody {
  if (exception instanceof DomainError) return errorBody(exception.code, exception.message, exception.details);
  // The client went away mid-body (a body parser's 'aborted'): nobody is left to answer, and it is no fault.
  if ((exception as { code?: string })?.code === 'ECONNRESET') {
    return errorBody('CLIENT_CLOSED', 'The client closed the connection before the request was read');
  }
  if (exception instanceof HttpException) {
    const status = exception.getStatus();
    const message =
      status === 413
        ? `${exception.message}: the limit is BODY_LIMIT; send fewer instances per request`
        : bounded(exception.message);
    return errorBody(CODE_OF_STATUS[status] ?? (status >= 500 ? 'INTERNAL' : 'HTTP_ERROR'), message, [], status);
  }
  // A client error raised by a library (http-errors style, e.g. the static file server of Swagger
  // UI refusing `..`): the client's fault, not the server's. A refused or missing file is no route.
  const status =
    (exception as { statusCode?: unknown; status?: unknown } | undefined)?.statusCode ??
    (exception as { status?: unknown } | undefined)?.status;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    if (status === 403 || status === 404) return errorBody('ROUTE_NOT_FOUND', 'No such route');
    const message = (exception as Error).message || 'Bad request';
    return errorBody(CODE_OF_STATUS[status] ?? 'INVALID_INPUT', message, [], status);
  }
  return errorBody('INTERNAL', 'Internal server error');
}

/** The Open Inference Protocol's error body: one message, details folded in. */
export function v2Body(body: ErrorBody): { error: string } {
  return { error: [body.message, ...body.details.map((d) => `${d.path}: ${d.message}`)].join('; ') };
}

export const isV2 = (url: string) => url === '/v2' || url.startsWith('/v2/') || url.startsWith('/v2?');

/**
 * The one place where errors become HTTP responses, with the same statuses for every protocol:
 * v1 and the default model's routes get the structured body with the request id, the Open Inference
 * Protocol's routes (/v2) get its `{"error": "..."}`. Never a stack trace; real faults (500) are
 * logged with theirs.
 */
@Catch()
export class HttpExceptionFilter implements ExceptionFilter {
  private readonly logger = new Logger('Errors');

  constructor(
    private readonly adapterHost: HttpAdapterHost,
    private readonly pacer: RefusalPacer = new RefusalPacer(0),
  ) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    const adapter = this.adapterHost.httpAdapter;
    const http = host.switchToHttp();
    const res: unknown = http.getResponse();
    const req = http.getRequest<AnyRequest>();
    const context = contextOf(req);
    const body: ErrorBody = { ...describe(exception), requestId: context?.requestId };
    // For the request's log line, which is written once the answer has gone.
    if (context) context.error = body.error;
    // Faults only: 503 and 504 (not ready, queue full, deadline) are the service working as designed.
    if (body.statusCode === 500) {
      // The request id ties this line to the request's own log line and to what the client saw.
      this.logger.error({
        msg: 'request failed',
        method: String(adapter.getRequestMethod(req)),
        // Without the query string: whatever a client puts there (a key, say) stays out of the log.
        url: String(adapter.getRequestUrl(req)).split('?')[0].slice(0, 200),
        status: body.statusCode,
        request_id: body.requestId,
        error: body.error,
        err: exception instanceof Error ? exception : new Error(String(exception)),
      });
    }
    if (adapter.isHeadersSent(res)) return;
    const retryAfter =
      exception instanceof RateLimitedError ? String(exception.retryAfterSeconds) : RETRY_AFTER[body.error];
    if (retryAfter) adapter.setHeader(res, 'Retry-After', retryAfter);
    if (body.error === 'UNAUTHENTICATED') adapter.setHeader(res, 'WWW-Authenticate', 'Bearer');
    const answer = () =>
      adapter.reply(res, isV2(String(adapter.getRequestUrl(req))) ? v2Body(body) : body, body.statusCode);
    // Refused before its body was read whole: the rest is never read, so the connection cannot carry another
    // request and closes after this answer (see closeWhenAnswered). Such answers are paced, except those
    // that tell the client when to come back (429, 503), which it needs at once.
    const raw = rawOf(req);
    if (!bodyUnread(raw)) return answer();
    adapter.setHeader(res, 'Connection', 'close');
    closeWhenAnswered(raw);
    if (retryAfter) return answer();
    this.pacer.pace(answer, () => raw.socket?.destroyed !== false);
  }
}
