// autocannon ships no type definitions (and @types/autocannon is not a dependency): only the part of
// its programmatic API that the bench uses, as documented in its README.
declare module 'autocannon' {
  import { EventEmitter } from 'node:events';

  namespace autocannon {
    interface Request {
      method?: string;
      path?: string;
      headers?: Record<string, string>;
      // autocannon writes a Buffer as is: binary bodies (bench/v2.ts) need it.
      body?: string | Buffer;
    }
    interface Options {
      url: string;
      connections?: number;
      pipelining?: number;
      /** Seconds; ignored when `amount` is set. */
      duration?: number;
      /** Stop after this many responses in all. */
      amount?: number;
      /** Seconds before a request counts as a timeout. */
      timeout?: number;
      /** The sequence of requests every connection cycles through. */
      requests?: Request[];
    }
    interface Histogram {
      average: number;
      mean: number;
      stddev: number;
      min: number;
      max: number;
      total: number;
      p50: number;
      p99: number;
    }
    interface Result {
      duration: number;
      errors: number;
      timeouts: number;
      non2xx: number;
      resets: number;
      latency: Histogram;
      requests: Histogram;
      throughput: Histogram;
      statusCodeStats: Record<string, { count: number }>;
    }
    /** Emits 'response' (client, statusCode, bytes, responseTimeMs) for every response. */
    type Instance = EventEmitter & { stop(): void };
  }

  function autocannon(
    opts: autocannon.Options,
    cb: (err: Error | null, result: autocannon.Result) => void,
  ): autocannon.Instance;
  export = autocannon;
}
