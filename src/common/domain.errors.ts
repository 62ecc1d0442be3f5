/** Every error code the service answers with, and when: the one list the documentation is made from. */
export const ERROR_CODES = {
  INVALID_INPUT: 'the body, a path parameter or a header does not fit the route or the model; details name each field',
  MALFORMED_JSON: 'the body is not JSON',
  UNSUPPORTED_MEDIA_TYPE:
    'the body is not UTF-8 JSON, or is compressed; /v2 also takes no Content-Type, application/octet-stream, gzip and deflate',
  PAYLOAD_TOO_LARGE:
    "the body is larger than BODY_LIMIT (on /v2, also once inflated), or holds more arrays, objects or keys than MAX_JSON_CONTAINERS, or more values (array elements and object members) than the route's model can take",
  ROUTE_NOT_FOUND: 'no such route',
  METHOD_NOT_ALLOWED: 'the route does not take this method',
  HTTP_ERROR: 'another client error, found by the HTTP layer',
  UNAUTHENTICATED: 'API keys are configured and the request has none, or one not in force',
  FORBIDDEN: "the API key is not allowed on this route (it lacks the route's scope)",
  RATE_LIMITED: 'over RATE_LIMIT_RPM requests in a minute; Retry-After says how many seconds to wait',
  HEADERS_TOO_LARGE: 'the request line and headers are larger than MAX_HEADER_SIZE',
  REQUEST_TIMEOUT: 'the request was not received whole within HTTP_REQUEST_TIMEOUT_MS',
  MODEL_NOT_FOUND: 'unknown model or version',
  MODEL_NOT_READY: 'the model is loading or failed to load (with the reason); retry after Retry-After',
  MODEL_CONTROL_DISABLED:
    'a repository load or unload while MODEL_CONTROL_MODE is not explicit; the message names the mode that allows it',
  MODEL_LOAD_FAILED: 'a repository load left the model failing (with the reason); what served before still serves',
  QUEUE_FULL: "the model's queue is at MAX_QUEUE_SIZE rows; retry after Retry-After",
  DEADLINE_EXCEEDED:
    'the request could not start running within its deadline (X-Request-Timeout-Ms, else REQUEST_TIMEOUT_MS); it never ran',
  CLIENT_CLOSED: 'the client closed the connection before the answer; only the log line sees it',
  SHUTTING_DOWN:
    'the service is shutting down and takes no new request; the connection closes after this answer; retry after Retry-After, on another replica',
  INFERENCE_FAILED: 'the model failed to run on input that passed validation',
  NON_FINITE_OUTPUT:
    'the model computed NaN or an infinity for this input, so v1 and /predict have no prediction to give; details name the output and instance (V2 carries such values)',
  INTERNAL: 'a fault of the server; logged with its stack, which never reaches the client',
} as const;

/**
 * Errors the service raises on purpose. They carry a stable code and no HTTP knowledge: each
 * protocol layer maps codes to its own status (see http-exception.filter.ts for REST).
 */
export type ErrorCode = keyof typeof ERROR_CODES;

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
    // No stack: a domain error is an answer the service chose, said whole by its code and message, and it
    // is made for every refused request, where capturing the stack was a measurable share of the refusal.
    const stackTraceLimit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(message);
    Error.stackTraceLimit = stackTraceLimit;
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

/** The model ran, but what it computed for an instance is not a number a prediction can be read from. */
export class NonFiniteOutputError extends DomainError {
  constructor(message: string, details: readonly ErrorDetail[]) {
    super('NON_FINITE_OUTPUT', message, details);
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

/** Load and unload are refused unless MODEL_CONTROL_MODE=explicit. */
export class ModelControlDisabledError extends DomainError {
  constructor(message: string) {
    super('MODEL_CONTROL_DISABLED', message);
  }
}

/** A repository load did not make the model serve what is on disk; what served before still does. */
export class ModelLoadFailedError extends DomainError {
  constructor(message: string) {
    super('MODEL_LOAD_FAILED', message);
  }
}
