import type { IncomingMessage, ServerResponse } from 'node:http';
import { DomainError } from '../common/domain.errors';
import { bodyTaken } from './v2-body';

/** The error both adapters' JSON parsers answer a body they cannot parse with. */
export const malformedJson = (message: string) =>
  new DomainError('MALFORMED_JSON', `The body is not valid JSON: ${message}`);

export const isJson = (contentType: string | undefined) =>
  /^application\/([\w.+-]+\+)?json\s*(;|$)/i.test(contentType ?? '');

/**
 * What a body must be before either adapter parses it, off /v2: JSON, in UTF-8, not compressed. Checked
 * here, once, so Express and Fastify refuse the same requests with the same 415.
 */
export function requireJson(req: IncomingMessage, _res: ServerResponse, next: (error?: unknown) => void): void {
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
