import {
  BadRequestException,
  ConflictException,
  ForbiddenException,
  HttpException,
  InternalServerErrorException,
  Logger,
  NotFoundException,
  PayloadTooLargeException,
  ServiceUnavailableException,
  UnsupportedMediaTypeException,
} from '@nestjs/common';
import { AbstractHttpAdapter, HttpAdapterHost } from '@nestjs/core';
import { ExecutionContextHost } from '@nestjs/core/helpers/execution-context-host';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import type { Request, Response } from 'express';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { IncomingMessage } from 'node:http';
import { Socket } from 'node:net';
import request from 'supertest';
import {
  ClientClosedError,
  DeadlineExceededError,
  DomainError,
  ErrorCode,
  InferenceFailedError,
  NonFiniteOutputError,
  InvalidInputError,
  ModelControlDisabledError,
  ModelLoadFailedError,
  ModelNotFoundError,
  ModelNotReadyError,
  QueueFullError,
  RateLimitedError,
} from './domain.errors';
import { HttpExceptionFilter } from './http-exception.filter';
import { attachContext } from './request-context';

/** What the adapter was asked to write: the fake response the filter is handed. */
interface FakeResponse {
  headersSent: boolean;
  headers: Record<string, string>;
  status?: number;
  body?: unknown;
  replies: number;
}

/** The adapter methods the filter calls, writing to the fake response instead of a socket. */
const adapter = {
  getRequestMethod: (req: IncomingMessage) => req.method,
  getRequestUrl: (req: IncomingMessage) => req.url,
  isHeadersSent: (res: FakeResponse) => res.headersSent,
  setHeader: (res: FakeResponse, name: string, value: string) => void (res.headers[name] = value),
  reply: (res: FakeResponse, body: unknown, status: number) => {
    res.replies++;
    res.status = status;
    res.body = body;
  },
};

function filterOn(httpAdapter: unknown): HttpExceptionFilter {
  const host = new HttpAdapterHost();
  host.httpAdapter = httpAdapter as AbstractHttpAdapter;
  return new HttpExceptionFilter(host);
}

interface Call {
  readonly url?: string;
  readonly method?: string;
  readonly requestId?: string;
  readonly headersSent?: boolean;
  /** Whether the request's body was read whole before the answer (true unless said otherwise). */
  readonly complete?: boolean;
}

/** Runs the filter on one exception for a real Node request, and returns what it wrote. */
function respond(exception: unknown, call: Call = {}): FakeResponse {
  const req = new IncomingMessage(new Socket());
  req.method = call.method ?? 'POST';
  req.url = call.url ?? '/v1/models/iris/predict';
  req.complete = call.complete ?? true;
  req.headers = { 'content-length': '100' };
  if (call.requestId) attachContext(req, { requestId: call.requestId });
  const res: FakeResponse = { headersSent: call.headersSent ?? false, headers: {}, replies: 0 };
  filterOn(adapter).catch(exception, new ExecutionContextHost([req, res]));
  return res;
}

const DETAILS = [{ path: 'instances[0]', message: 'expected 4 numbers, got 3' }];

describe('HttpExceptionFilter', () => {
  let logged: jest.SpyInstance;
  beforeEach(() => {
    logged = jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
  });
  afterEach(() => logged.mockRestore());

  it('closes the connection after answering a request whose body was not read whole, and only then', () => {
    const refused = new DomainError('PAYLOAD_TOO_LARGE', 'Too large');
    expect(respond(refused, { complete: false }).headers).toMatchObject({ Connection: 'close' });
    expect(respond(refused).headers).not.toHaveProperty('Connection');
  });

  describe('domain errors', () => {
    // A record, so that the compiler insists on a row for every code there is.
    const CASES: Record<ErrorCode, [DomainError, number, Record<string, string>]> = {
      INVALID_INPUT: [new InvalidInputError('Invalid input', DETAILS), 400, {}],
      MALFORMED_JSON: [new DomainError('MALFORMED_JSON', 'The body is not valid JSON'), 400, {}],
      UNSUPPORTED_MEDIA_TYPE: [new DomainError('UNSUPPORTED_MEDIA_TYPE', 'Send application/json'), 415, {}],
      PAYLOAD_TOO_LARGE: [new DomainError('PAYLOAD_TOO_LARGE', 'Too many instances'), 413, {}],
      ROUTE_NOT_FOUND: [new DomainError('ROUTE_NOT_FOUND', 'No such route'), 404, {}],
      METHOD_NOT_ALLOWED: [new DomainError('METHOD_NOT_ALLOWED', 'Not with this method'), 405, {}],
      HTTP_ERROR: [new DomainError('HTTP_ERROR', 'Some other client error'), 400, {}],
      UNAUTHENTICATED: [
        new DomainError('UNAUTHENTICATED', 'An API key is required'),
        401,
        { 'WWW-Authenticate': 'Bearer' },
      ],
      FORBIDDEN: [new DomainError('FORBIDDEN', 'This key may not'), 403, {}],
      RATE_LIMITED: [new RateLimitedError(17, 60), 429, { 'Retry-After': '17' }],
      HEADERS_TOO_LARGE: [new DomainError('HEADERS_TOO_LARGE', 'Headers too large'), 431, {}],
      REQUEST_TIMEOUT: [new DomainError('REQUEST_TIMEOUT', 'Too slow'), 408, {}],
      MODEL_NOT_FOUND: [new ModelNotFoundError("Model 'rose' not found"), 404, {}],
      MODEL_NOT_READY: [new ModelNotReadyError('iris is loading'), 503, { 'Retry-After': '5' }],
      MODEL_CONTROL_DISABLED: [new ModelControlDisabledError('load needs MODEL_CONTROL_MODE=explicit'), 400, {}],
      MODEL_LOAD_FAILED: [new ModelLoadFailedError("Model 'iris' did not load whole"), 400, {}],
      QUEUE_FULL: [new QueueFullError('iris has 16 rows queued'), 503, { 'Retry-After': '1' }],
      DEADLINE_EXCEEDED: [new DeadlineExceededError('not started within its deadline'), 504, {}],
      CLIENT_CLOSED: [new ClientClosedError(), 499, {}],
      SHUTTING_DOWN: [new DomainError('SHUTTING_DOWN', 'shutting down'), 503, { 'Retry-After': '1' }],
      INFERENCE_FAILED: [new InferenceFailedError('the run failed'), 500, {}],
      NON_FINITE_OUTPUT: [new NonFiniteOutputError('NaN out', DETAILS), 422, {}],
      INTERNAL: [new DomainError('INTERNAL', 'something broke'), 500, {}],
    };

    it.each(Object.entries(CASES).map(([code, [error, status, headers]]) => [code, status, error, headers] as const))(
      'answers %s with status %i and exactly the headers it needs',
      (code, status, error, headers) => {
        const res = respond(error);
        expect(res.status).toBe(status);
        expect(res.headers).toEqual(headers);
        expect(res.body).toEqual({
          statusCode: status,
          error: code,
          message: error.message,
          details: [...error.details],
          requestId: undefined,
        });
        expect(res.replies).toBe(1);
      },
    );

    it('keeps the details of an invalid input, in order', () => {
      const details = [...DETAILS, { path: 'instances[2].petal_w', message: 'must be a number' }];
      expect(respond(new InvalidInputError('Invalid input', details)).body).toMatchObject({ details });
    });

    it('takes Retry-After of a rate limit from the error itself', () => {
      expect(respond(new RateLimitedError(1, 10)).headers).toEqual({ 'Retry-After': '1' });
      expect(respond(new RateLimitedError(59, 10)).headers).toEqual({ 'Retry-After': '59' });
    });

    it('logs faults (500) with the stack, the request id and the URL without its query, and nothing else', () => {
      const error = new InferenceFailedError('the run failed');
      respond(error, { url: '/v1/models/iris/predict?api_key=secret', requestId: 'req-1' });
      expect(logged).toHaveBeenCalledTimes(1);
      expect(logged.mock.calls[0][0]).toEqual({
        msg: 'request failed',
        method: 'POST',
        url: '/v1/models/iris/predict',
        status: 500,
        request_id: 'req-1',
        error: 'INFERENCE_FAILED',
        // The error itself, whose message and stack pino's serializer writes.
        err: error,
      });
      expect(JSON.stringify(logged.mock.calls)).not.toContain('secret');
      for (const quiet of [new ModelNotReadyError('x'), new QueueFullError('x'), new InvalidInputError('x')]) {
        respond(quiet);
      }
      expect(logged).toHaveBeenCalledTimes(1);
    });
  });

  describe('other exceptions', () => {
    it('answers a connection reset while reading the body as 499 CLIENT_CLOSED, without logging it', () => {
      const reset = Object.assign(new Error('aborted'), { code: 'ECONNRESET' });
      expect(respond(reset)).toMatchObject({
        status: 499,
        headers: {},
        body: {
          statusCode: 499,
          error: 'CLIENT_CLOSED',
          message: 'The client closed the connection before the request was read',
          details: [],
        },
      });
      expect(logged).not.toHaveBeenCalled();
    });

    it.each<[string, HttpException, number, string, string]>([
      ['404', new NotFoundException('Cannot GET /v1/nope'), 404, 'ROUTE_NOT_FOUND', 'Cannot GET /v1/nope'],
      [
        '404 for a long path, cut short',
        new NotFoundException(`Cannot GET /${'a'.repeat(15000)}`),
        404,
        'ROUTE_NOT_FOUND',
        `Cannot GET /${'a'.repeat(188)}... (cut short)`,
      ],
      ['405', new HttpException('Method Not Allowed', 405), 405, 'METHOD_NOT_ALLOWED', 'Method Not Allowed'],
      [
        '413',
        new PayloadTooLargeException('request entity too large'),
        413,
        'PAYLOAD_TOO_LARGE',
        'request entity too large: the limit is BODY_LIMIT; send fewer instances per request',
      ],
      ['400', new BadRequestException('Bad JSON'), 400, 'INVALID_INPUT', 'Bad JSON'],
      ['415', new UnsupportedMediaTypeException('Nope'), 415, 'UNSUPPORTED_MEDIA_TYPE', 'Nope'],
      ['403', new ForbiddenException('Not yours'), 403, 'HTTP_ERROR', 'Not yours'],
      ['409', new ConflictException('Taken'), 409, 'HTTP_ERROR', 'Taken'],
      ['503', new ServiceUnavailableException('Down'), 503, 'INTERNAL', 'Down'],
    ])('maps Nest HttpException %s to its status and code', (_, exception, status, error, message) => {
      const res = respond(exception);
      expect(res.status).toBe(status);
      expect(res.body).toEqual({ statusCode: status, error, message, details: [], requestId: undefined });
      expect(res.headers).toEqual({});
    });

    it('answers a Nest 500 with its own message, and logs it as a fault', () => {
      expect(respond(new InternalServerErrorException('boom')).body).toEqual({
        statusCode: 500,
        error: 'INTERNAL',
        message: 'boom',
        details: [],
        requestId: undefined,
      });
      expect(logged).toHaveBeenCalledTimes(1);
    });

    it.each([
      ['statusCode 403', { statusCode: 403 }],
      ['statusCode 404', { statusCode: 404 }],
      ['status 403', { status: 403 }],
      ['status 404', { status: 404 }],
    ])('answers a library error with %s as 404 ROUTE_NOT_FOUND, hiding what it refused', (_, fields) => {
      const error = Object.assign(new Error("Forbidden: path contains '..'"), fields);
      expect(respond(error)).toMatchObject({
        status: 404,
        body: { statusCode: 404, error: 'ROUTE_NOT_FOUND', message: 'No such route', details: [] },
      });
    });

    it('answers other library client errors with their own status and message', () => {
      expect(respond(Object.assign(new Error('Range Not Satisfiable'), { statusCode: 416 })).body).toEqual({
        statusCode: 416,
        error: 'INVALID_INPUT',
        message: 'Range Not Satisfiable',
        details: [],
        requestId: undefined,
      });
      expect(respond(Object.assign(new Error(''), { status: 405 })).body).toMatchObject({
        statusCode: 405,
        error: 'METHOD_NOT_ALLOWED',
        message: 'Bad request',
      });
      expect(logged).not.toHaveBeenCalled();
    });

    it.each([
      ['an Error', new Error('ENOENT: /srv/models/iris/1/model.onnx at load (/app/dist/x.js:1:1)')],
      ['a TypeError', new TypeError("Cannot read properties of undefined (reading 'dims')")],
      ['a library error with a 5xx status', Object.assign(new Error('upstream'), { statusCode: 502 })],
      ['a string', 'thrown text'],
      ['undefined', undefined],
      ['null', null],
    ])('answers %s as 500 INTERNAL, with no message or stack of its own in the body', (_, exception) => {
      const res = respond(exception, { requestId: 'req-9' });
      expect(res.status).toBe(500);
      expect(res.body).toEqual({
        statusCode: 500,
        error: 'INTERNAL',
        message: 'Internal server error',
        details: [],
        requestId: 'req-9',
      });
      const text = JSON.stringify(res.body);
      for (const leak of ['ENOENT', '/app/', 'dims', 'upstream', 'thrown text', ' at '])
        expect(text).not.toContain(leak);
      expect(logged).toHaveBeenCalledTimes(1);
    });
  });

  describe('the response', () => {
    it('carries the request id of the request context', () => {
      expect(respond(new ModelNotFoundError('no'), { requestId: 'abc-123' }).body).toMatchObject({
        requestId: 'abc-123',
      });
      expect(respond(new ModelNotFoundError('no')).body).toMatchObject({ requestId: undefined });
    });

    it.each(['/v2', '/v2/models/iris/infer', '/v2?x=1', '/v2/health/ready'])(
      'is the Open Inference Protocol body {"error"} under %s, details folded into the message',
      (url) => {
        const res = respond(new InvalidInputError('Invalid input', DETAILS), { url, requestId: 'r' });
        expect(res.status).toBe(400);
        expect(res.body).toEqual({ error: 'Invalid input; instances[0]: expected 4 numbers, got 3' });
      },
    );

    it('keeps the same statuses and headers under /v2', () => {
      const res = respond(new QueueFullError('iris has 16 rows queued'), { url: '/v2/models/iris/infer' });
      expect(res).toMatchObject({ status: 503, headers: { 'Retry-After': '1' } });
      expect(res.body).toEqual({ error: 'iris has 16 rows queued' });
    });

    it.each(['/v1/models', '/v20/models', '/api/v2/models', '/v2x'])('is the structured body under %s', (url) => {
      expect(respond(new ModelNotFoundError('no'), { url }).body).toMatchObject({ error: 'MODEL_NOT_FOUND' });
    });

    it('writes nothing when the headers were already sent, yet still logs a fault', () => {
      const res = respond(new ModelNotReadyError('loading'), { headersSent: true });
      expect(res).toEqual({ headersSent: true, headers: {}, replies: 0 });
      expect(respond(new Error('late fault'), { headersSent: true }).replies).toBe(0);
      expect(logged).toHaveBeenCalledTimes(1);
    });
  });

  describe('on the real HTTP adapters', () => {
    const error = () => new ModelNotReadyError('iris is loading');

    it('answers through Express with the status, headers and JSON body', async () => {
      const express = new ExpressAdapter();
      const filter = filterOn(express);
      express.getInstance().use((req: Request, res: Response) => {
        attachContext(req, { requestId: 'express-1' });
        filter.catch(
          req.path.startsWith('/v2') ? new InvalidInputError('Invalid input', DETAILS) : error(),
          new ExecutionContextHost([req, res]),
        );
      });
      const v1 = await request(express.getInstance()).get('/v1/models/iris');
      expect(v1.status).toBe(503);
      expect(v1.headers['retry-after']).toBe('5');
      expect(v1.headers['content-type']).toMatch(/^application\/json/);
      expect(v1.body).toEqual({
        statusCode: 503,
        error: 'MODEL_NOT_READY',
        message: 'iris is loading',
        details: [],
        requestId: 'express-1',
      });
      const v2 = await request(express.getInstance()).post('/v2/models/iris/infer');
      expect([v2.status, v2.body]).toEqual([400, { error: 'Invalid input; instances[0]: expected 4 numbers, got 3' }]);
    });

    it('answers through Fastify, finding the context of the raw request', async () => {
      const fastify = new FastifyAdapter();
      const filter = filterOn(fastify);
      const instance = fastify.getInstance();
      instance.get('/v1/models/iris', (req: FastifyRequest, reply: FastifyReply) => {
        attachContext(req, { requestId: 'fastify-1' });
        filter.catch(
          new DomainError('UNAUTHENTICATED', 'An API key is required'),
          new ExecutionContextHost([req, reply]),
        );
      });
      try {
        const res = await instance.inject({ method: 'GET', url: '/v1/models/iris' });
        expect(res.statusCode).toBe(401);
        expect(res.headers['www-authenticate']).toBe('Bearer');
        expect(res.json()).toEqual({
          statusCode: 401,
          error: 'UNAUTHENTICATED',
          message: 'An API key is required',
          details: [],
          requestId: 'fastify-1',
        });
      } finally {
        await instance.close();
      }
    });
  });
});
