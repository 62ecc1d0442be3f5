import type { IncomingMessage, ServerResponse } from 'node:http';
import { promisify } from 'node:util';
import { gunzip, inflate, inflateRaw, InputType, ZlibOptions } from 'node:zlib';
import { DomainError, InvalidInputError } from '../common/domain.errors';
import { isV2 } from '../common/http-exception.filter';
import { objectSlot } from '../common/object-slot';
import { AnyRequest, rawOf } from '../common/request-context';
import { CostLimitsOf, isJson, parseJsonBytes, parseScannedJson } from './body-policy';
import { JsonCostScan } from '../common/json-scan';
import { markBodyArrived } from './linger';

/**
 * The body of a POST to /v2, read here on both adapters, since the Open Inference Protocol's
 * clients send what neither adapter's JSON parser takes: no Content-Type at all (Triton's
 * tritonclient), application/octet-stream, gzip or deflate, and a JSON header followed by raw
 * tensors (the binary tensor data extension). The JSON header becomes the body the route
 * validates; the bytes after it are kept for the route's codec (see binaryTailOf).
 */

/** The header that gives the JSON part's length, in requests and in answers. */
export const HEADER_LENGTH = 'inference-header-content-length';

const decoders: Record<string, (buffer: InputType, options: ZlibOptions) => Promise<Buffer>> = {
  gzip: promisify(gunzip),
  'x-gzip': promisify(gunzip),
  deflate: promisify(inflate),
};
const inflateRawAsync = promisify(inflateRaw);

/** What was read from a /v2 body: the JSON header (parsed) and the bytes after it. */
interface V2Body {
  readonly tail: Buffer;
}

const TAIL = objectSlot<V2Body>('v2Body');

/** The bytes after the JSON header of a /v2 request (empty when it had none). */
export const binaryTailOf = (req: AnyRequest): Buffer => TAIL.get(rawOf(req))?.tail ?? EMPTY;
const EMPTY = Buffer.alloc(0);

/** Whether this middleware has read the request's body, so no adapter parser must read it again. */
export const bodyTaken = (req: AnyRequest): boolean => TAIL.get(rawOf(req)) !== undefined;

const tooLarge = (limit: number, what: string) =>
  new DomainError(
    'PAYLOAD_TOO_LARGE',
    `The ${what} is larger than the limit of ${limit} bytes (BODY_LIMIT); send fewer instances per request`,
  );

const unsupported = (message: string) => new DomainError('UNSUPPORTED_MEDIA_TYPE', message);

/** The media type a /v2 body may have: none (read as JSON), JSON in UTF-8, or octet-stream. */
function checkMediaType(req: IncomingMessage): DomainError | undefined {
  const contentType = req.headers['content-type'];
  if (contentType === undefined || contentType.trim() === '') return undefined;
  if (!isJson(contentType) && !/^application\/octet-stream\s*(;|$)/i.test(contentType)) {
    return unsupported(
      `Send the body as JSON (Content-Type application/json, or none) or as the binary tensor extension ` +
        `(application/octet-stream); got ${contentType}`,
    );
  }
  const charset = /;\s*charset\s*=\s*"?([^";\s]+)/i.exec(contentType)?.[1].toLowerCase();
  if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') {
    return unsupported(`The body must be UTF-8 JSON (got charset ${charset})`);
  }
  return undefined;
}

function contentEncoding(req: IncomingMessage): string | DomainError {
  const encoding = (req.headers['content-encoding'] ?? 'identity').trim().toLowerCase();
  if (encoding === 'identity' || encoding === '' || encoding in decoders) return encoding;
  return unsupported(`Content-Encoding ${encoding} is not accepted; send gzip, deflate or none`);
}

/**
 * Reads the whole body, refusing it as soon as it passes the limit rather than holding it, or as soon as
 * `inspect` finds a chunk refused (see JsonCostScan): what is still on its way is never read.
 */
export function readRaw(
  req: IncomingMessage,
  limit: number,
  inspect?: (chunk: Buffer) => DomainError | undefined,
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (declared > limit) {
      req.pause();
      return reject(tooLarge(limit, 'body'));
    }
    const chunks: Buffer[] = [];
    let received = 0;
    const cleanup = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('aborted', onAborted);
    };
    const onData = (chunk: Buffer) => {
      received += chunk.length;
      const refused = received > limit ? tooLarge(limit, 'body') : inspect?.(chunk);
      if (refused) {
        cleanup();
        // All of it is here: left flowing, the request ends by itself and keeps its connection.
        if (received >= declared) markBodyArrived(req);
        else req.pause();
        reject(refused);
      } else chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, received));
    };
    const onError = (err: Error) => {
      cleanup();
      reject(err);
    };
    const onAborted = () => {
      cleanup();
      reject(Object.assign(new Error('The client closed the connection'), { code: 'ECONNRESET' }));
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('aborted', onAborted);
  });
}

/** Decompresses within the limit: a body that inflates past it is refused before it fills memory. */
async function decode(body: Buffer, encoding: string, limit: number): Promise<Buffer> {
  if (encoding === 'identity' || encoding === '') return body;
  const options = { maxOutputLength: Math.max(limit, 1) };
  try {
    return await decoders[encoding](body, options);
  } catch (err) {
    if ((err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') throw tooLarge(limit, 'decompressed body');
    // Some clients send deflate without its zlib wrapper, as raw DEFLATE; read that too.
    if (encoding === 'deflate') {
      try {
        return await inflateRawAsync(body, options);
      } catch (raw) {
        if ((raw as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') throw tooLarge(limit, 'decompressed body');
      }
    }
    throw new InvalidInputError(`The body is not valid ${encoding} data: ${(err as Error).message}`);
  }
}

/** Splits a body at Inference-Header-Content-Length into its JSON header and the raw tensors after it. */
function split(req: IncomingMessage, body: Buffer): { json: Buffer; tail: Buffer } {
  const header = req.headers[HEADER_LENGTH];
  if (header === undefined) return { json: body, tail: EMPTY };
  const text = String(header).trim();
  if (!/^\d{1,15}$/.test(text)) {
    throw new InvalidInputError(`Inference-Header-Content-Length must be a byte count; got ${JSON.stringify(text)}`);
  }
  const length = Number(text);
  if (length > body.length) {
    throw new InvalidInputError(
      `Inference-Header-Content-Length is ${length}, past the end of the ${body.length}-byte body`,
    );
  }
  return { json: body.subarray(0, length), tail: body.subarray(length) };
}

/** Where a /v2 body is read (see the file's comment); other routes keep the JSON body policy. */
export function v2BodyMiddleware(limit: number, costLimitsOf: CostLimitsOf) {
  return (req: IncomingMessage, _res: ServerResponse, next: (error?: unknown) => void): void => {
    if (req.method !== 'POST' || !isV2(req.url ?? '')) return next();
    const refused = checkMediaType(req);
    const encoding = contentEncoding(req);
    if (refused) return next(refused);
    if (encoding instanceof DomainError) return next(encoding);
    const costLimits = costLimitsOf(req);
    // A plain body's JSON part is scanned as it arrives; a compressed one's, once inflated.
    const scan = encoding === 'identity' || encoding === '' ? new JsonCostScan(costLimits) : undefined;
    const jsonLength = Number(req.headers[HEADER_LENGTH] ?? Infinity);
    let offset = 0;
    const inspect =
      scan &&
      ((chunk: Buffer) => {
        const end = jsonLength - offset;
        offset += chunk.length;
        return end > 0 ? scan.feed(end >= chunk.length ? chunk : chunk.subarray(0, end)) : undefined;
      });
    readRaw(req, limit, inspect)
      .then((raw) => decode(raw, encoding, limit))
      .then((body) => {
        const { json, tail } = split(req, body);
        takeBody(req, scan ? parseScannedJson(json) : parseJsonBytes(json, costLimits), tail);
        next();
      })
      .catch(next);
  };
}

/**
 * Hands on a body the service has read itself (this middleware, or body-policy.ts's JSON one), with the
 * bytes after a /v2 JSON header: Express's parser skips a request whose body is read (`_body`), and
 * Fastify is given it in place of its own parsing (http/fastify.ts).
 */
export function takeBody(req: IncomingMessage, parsed: unknown, tail: Buffer = EMPTY): void {
  TAIL.set(req, { tail });
  const taken = req as IncomingMessage & { body?: unknown; _body?: boolean };
  taken.body = parsed;
  taken._body = true;
}

/** The body the service read (see takeBody). */
export const takenBody = (req: AnyRequest): unknown => (rawOf(req) as IncomingMessage & { body?: unknown }).body;
