import { Metadata, status as Status } from '@grpc/grpc-js';
import { DomainError, ErrorCode, RateLimitedError } from '../common/domain.errors';
import { v2Body } from '../common/http-exception.filter';

/**
 * Every error code of the service as a gRPC status: the one table for gRPC, as the exception
 * filter's is for HTTP. Typed over every code, so a new code cannot go unmapped. Not ready, queue
 * full and shutting down are UNAVAILABLE, which gRPC clients treat as worth a retry elsewhere.
 */
export const GRPC_STATUS: Readonly<Record<ErrorCode, Status>> = {
  INVALID_INPUT: Status.INVALID_ARGUMENT,
  MALFORMED_JSON: Status.INVALID_ARGUMENT,
  UNSUPPORTED_MEDIA_TYPE: Status.INVALID_ARGUMENT,
  PAYLOAD_TOO_LARGE: Status.RESOURCE_EXHAUSTED,
  ROUTE_NOT_FOUND: Status.UNIMPLEMENTED,
  METHOD_NOT_ALLOWED: Status.UNIMPLEMENTED,
  HTTP_ERROR: Status.INVALID_ARGUMENT,
  UNAUTHENTICATED: Status.UNAUTHENTICATED,
  FORBIDDEN: Status.PERMISSION_DENIED,
  RATE_LIMITED: Status.RESOURCE_EXHAUSTED,
  HEADERS_TOO_LARGE: Status.RESOURCE_EXHAUSTED,
  REQUEST_TIMEOUT: Status.DEADLINE_EXCEEDED,
  MODEL_NOT_FOUND: Status.NOT_FOUND,
  MODEL_NOT_READY: Status.UNAVAILABLE,
  QUEUE_FULL: Status.UNAVAILABLE,
  SHUTTING_DOWN: Status.UNAVAILABLE,
  MODEL_CONTROL_DISABLED: Status.FAILED_PRECONDITION,
  MODEL_LOAD_FAILED: Status.INVALID_ARGUMENT,
  DEADLINE_EXCEEDED: Status.DEADLINE_EXCEEDED,
  CLIENT_CLOSED: Status.CANCELLED,
  INFERENCE_FAILED: Status.INTERNAL,
  NON_FINITE_OUTPUT: Status.INVALID_ARGUMENT,
  INTERNAL: Status.INTERNAL,
};

/** What a fault of the server tells the client: nothing of its stack or message. */
const INTERNAL_MESSAGE = 'Internal server error';

/** An error as a gRPC call ends with it. */
export interface CallError {
  readonly code: Status;
  readonly details: string;
  readonly metadata: Metadata;
}

/**
 * An error as the gRPC answer: its status, and the message the V2 REST routes answer (details
 * folded in), so a client reads the same words on either protocol. The service's own code rides in
 * the trailers as `error-code`, for clients that branch on it rather than on the status.
 */
export function toCallError(err: unknown): CallError {
  const metadata = new Metadata();
  if (!(err instanceof DomainError)) {
    metadata.set('error-code', 'INTERNAL');
    return { code: Status.INTERNAL, details: INTERNAL_MESSAGE, metadata };
  }
  metadata.set('error-code', err.code);
  if (err instanceof RateLimitedError) metadata.set('retry-after', String(err.retryAfterSeconds));
  const message = v2Body({ statusCode: 0, error: err.code, message: err.message, details: [...err.details] }).error;
  return { code: GRPC_STATUS[err.code], details: message, metadata };
}
