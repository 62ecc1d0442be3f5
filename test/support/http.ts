import { INestApplication } from '@nestjs/common';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RawResponse {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly text: string;
  /** The body parsed as JSON, or undefined when it is not JSON. */
  readonly json: unknown;
}

export interface RawRequest {
  readonly method?: string;
  /** Sent byte for byte: no URL normalisation, so `..` and encodings reach the server as written. */
  readonly path: string;
  readonly headers?: Record<string, string | string[]>;
  readonly body?: string | Buffer;
}

/** Starts the app listening on a free loopback port and answers that port. */
export async function listen(app: INestApplication): Promise<number> {
  await app.listen(0, '127.0.0.1');
  return (app.getHttpServer().address() as AddressInfo).port;
}

/** One request over a fresh connection, the path exactly as given. */
export function rawRequest(port: number, req: RawRequest): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const outgoing = http.request(
      { host: '127.0.0.1', port, method: req.method ?? 'GET', path: req.path, headers: req.headers, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
        });
        res.on('error', reject);
      },
    );
    outgoing.on('error', reject);
    outgoing.end(req.body);
  });
}

/** The structured error body of v1 routes, or the Open Inference Protocol's `{error}` under /v2. */
export function isStructuredError(path: string, status: number, res: RawResponse): boolean {
  const body = res.json as Record<string, unknown> | undefined;
  if (!body || typeof body !== 'object') return false;
  if (/^\/v2(\/|\?|$)/.test(path) && Object.keys(body).length === 1)
    return typeof body.error === 'string' && body.error.length > 0;
  return (
    body.statusCode === status &&
    typeof body.error === 'string' &&
    typeof body.message === 'string' &&
    Array.isArray(body.details)
  );
}
