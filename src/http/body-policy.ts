import { isUtf8 } from 'node:buffer';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { DomainError } from '../common/domain.errors';
import { checkJsonCost, JsonCostLimits, JsonCostScan, markScanned } from '../common/json-scan';
import type { ElementBudget } from './element-budget';
import { bodyTaken, readRaw, takeBody } from './v2-body';

/** The error both adapters' JSON parsers answer a body they cannot parse with. */
export const malformedJson = (message: string) =>
  new DomainError('MALFORMED_JSON', `The body is not valid JSON: ${message}`);

export const isJson = (contentType: string | undefined) =>
  /^application\/([\w.+-]+\+)?json\s*(;|$)/i.test(contentType ?? '');

/**
 * What a body must be before either adapter parses it, off /v2: JSON, in UTF-8, not compressed. Checked
 * here, once, so Express and Fastify refuse the same requests with the same 415.
 */
export function requireJson(limit: number) {
  return (req: IncomingMessage, _res: ServerResponse, next: (error?: unknown) => void): void => {
    // Refused on what it declares, before a byte of it is read.
    if (Number(req.headers['content-length']) > limit) {
      return next(
        new DomainError(
          'PAYLOAD_TOO_LARGE',
          `The body is larger than the limit of ${limit} bytes (BODY_LIMIT); send fewer instances per request`,
        ),
      );
    }
    checkBody(req, next);
  };
}

function checkBody(req: IncomingMessage, next: (error?: unknown) => void): void {
  // The Open Inference Protocol's bodies have their own, wider policy, already applied (v2-body.ts).
  if (!['POST', 'PUT', 'PATCH'].includes(req.method ?? '') || bodyTaken(req)) return next();
  const contentType = req.headers['content-type'];
  const charset = /;\s*charset\s*=\s*"?([^";\s]+)/i.exec(contentType ?? '')?.[1].toLowerCase();
  const encoding = req.headers['content-encoding']?.toLowerCase();
  if (!isJson(contentType)) {
    return next(
      new DomainError(
        'UNSUPPORTED_MEDIA_TYPE',
        `Send the body as JSON with Content-Type: application/json (got ${contentType ?? 'none'})`,
      ),
    );
  }
  if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') {
    return next(new DomainError('UNSUPPORTED_MEDIA_TYPE', `The body must be UTF-8 JSON (got charset ${charset})`));
  }
  if (encoding !== undefined && encoding !== 'identity') {
    return next(
      new DomainError(
        'UNSUPPORTED_MEDIA_TYPE',
        `Compressed bodies are not accepted (got Content-Encoding ${encoding}); send plain JSON`,
      ),
    );
  }
  next();
}

/** Parses like Express's strict JSON parser: an object or an array, and an empty body as {}. */
export function parseJsonBody(text: string): unknown {
  if (text.trim() === '') return {};
  const value: unknown = JSON.parse(text);
  if (typeof value !== 'object' || value === null) throw new SyntaxError('the body must be a JSON object');
  return value;
}

/**
 * A JSON body from its bytes: its cost bounded first (common/json-scan.ts), then parsed; bytes that are
 * not UTF-8 are refused as such.
 */
export function parseJsonBytes(bytes: Buffer, limits: JsonCostLimits): unknown {
  const refused = checkJsonCost(bytes, limits);
  if (refused) throw refused;
  return parseScannedJson(bytes);
}

/** A JSON body from bytes whose cost JsonCostScan has already bounded. */
export function parseScannedJson(bytes: Buffer): unknown {
  // Said plainly, rather than left to surface as U+FFFD inside a string or as a confusing parse error.
  if (!isUtf8(bytes)) throw malformedJson('it is not valid UTF-8 text; send JSON encoded as UTF-8');
  let body: unknown;
  try {
    body = parseJsonBody(bytes.toString('utf8'));
  } catch (err) {
    throw malformedJson((err as Error).message);
  }
  markScanned(body);
  return body;
}

/** Whether a request carries a body at all, as Express's parser decides it: a length or a transfer coding. */
const hasBody = (req: IncomingMessage) =>
  req.headers['transfer-encoding'] !== undefined || !Number.isNaN(Number(req.headers['content-length'] ?? NaN));

/**
 * The JSON body of a request off /v2, read here on both adapters rather than by their own parsers:
 * Express's buffers and decodes the whole body before anything bounds its cost, and Fastify's costs a
 * stream and an async resource per request. The body policy (requireJson) has already refused what is
 * not plain UTF-8 JSON within BODY_LIMIT by its headers; the bytes then go through the cost bound and
 * JSON.parse once each.
 */
export function jsonBodyMiddleware(limit: number, costLimits: CostLimitsOf) {
  return (req: IncomingMessage, _res: ServerResponse, next: (error?: unknown) => void): void => {
    if (bodyTaken(req) || !hasBody(req) || !isJson(req.headers['content-type'])) return next();
    const scan = new JsonCostScan(costLimits(req));
    readRaw(req, limit, (chunk) => scan.feed(chunk))
      .then((bytes) => {
        takeBody(req, parseScannedJson(bytes));
        next();
      })
      .catch(next);
  };
}

/** The cost limits of a request's body: the settings', and its route's element budget where it has one. */
export type CostLimitsOf = (req: IncomingMessage) => JsonCostLimits;

export function jsonCostLimits(
  config: { MAX_JSON_CONTAINERS: number; MAX_ARRAY_LENGTH: number; MAX_STRING_LENGTH: number },
  budgetOf: (req: IncomingMessage) => ElementBudget | undefined = () => undefined,
): CostLimitsOf {
  const {
    MAX_JSON_CONTAINERS: maxContainers,
    MAX_ARRAY_LENGTH: maxArrayLength,
    MAX_STRING_LENGTH: maxStringLength,
  } = config;
  const limits: JsonCostLimits = {
    maxContainers,
    maxArrayLength,
    maxStringLength,
    maxElements: Infinity,
    elementsReason: undefined,
  };
  return (req) => {
    const budget = budgetOf(req);
    // A literal of the same fields every time, not a spread: on every request, a spread cost more than the scan.
    return budget
      ? { maxContainers, maxArrayLength, maxStringLength, maxElements: budget.max, elementsReason: budget.reason }
      : limits;
  };
}
