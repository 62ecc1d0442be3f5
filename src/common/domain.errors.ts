/**
 * Errors the service raises on purpose. They carry a stable code and no HTTP knowledge: each
 * protocol layer maps codes to its own status (see http-exception.filter.ts for REST).
 */
export type ErrorCode =
  | 'INVALID_INPUT'
  | 'MALFORMED_JSON'
  | 'UNSUPPORTED_MEDIA_TYPE'
  | 'PAYLOAD_TOO_LARGE'
  | 'ROUTE_NOT_FOUND'
  | 'UNAUTHENTICATED'
  | 'FORBIDDEN'
  | 'RATE_LIMITED'
  | 'HEADERS_TOO_LARGE'
  | 'REQUEST_TIMEOUT'
  | 'MODEL_NOT_FOUND'
  | 'MODEL_NOT_READY'
  | 'QUEUE_FULL'
  | 'DEADLINE_EXCEEDED'
  | 'CLIENT_CLOSED'
  | 'INFERENCE_FAILED'
  | 'INTERNAL';

export interface ErrorDetail {
  /** Where in the request the problem is, e.g. `instances[3].features`. */
  readonly path: string;
  readonly message: string;
}

export class DomainError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details: readonly ErrorDetail[] = [],
  ) {
    super(message);
    this.name = new.target.name;
  }
}

export class InvalidInputError extends DomainError {
  constructor(message: string, details: readonly ErrorDetail[] = []) {
    super('INVALID_INPUT', message, details);
  }
}

export class ModelNotFoundError extends DomainError {
  constructor(message: string) {
    super('MODEL_NOT_FOUND', message);
  }
}

export class ModelNotReadyError extends DomainError {
  constructor(message: string) {
    super('MODEL_NOT_READY', message);
  }
}

/** The runtime failed on input that passed validation: a fault of the model or the server. */
export class InferenceFailedError extends DomainError {
  constructor(message: string) {
    super('INFERENCE_FAILED', message);
  }
}

/** The model's queue is at its bound: the client should retry later rather than pile on. */
export class QueueFullError extends DomainError {
  constructor(message: string) {
    super('QUEUE_FULL', message);
  }
}

/** The request was still queued when its deadline passed; it never ran. */
export class DeadlineExceededError extends DomainError {
  constructor(message: string) {
    super('DEADLINE_EXCEEDED', message);
  }
}

/** The client went away while its request was queued; nobody is left to answer. */
export class ClientClosedError extends DomainError {
  constructor() {
    super('CLIENT_CLOSED', 'The client closed the connection before the request ran');
  }
}

/** Too many requests from one API key (or client address) within the window. */
export class RateLimitedError extends DomainError {
  constructor(
    /** Whole seconds until the client may send again. */
    readonly retryAfterSeconds: number,
    limit: number,
  ) {
    super('RATE_LIMITED', `Rate limit of ${limit} requests per minute reached; retry after ${retryAfterSeconds} s`);
  }
}
