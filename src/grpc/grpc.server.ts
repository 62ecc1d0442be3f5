import {
  BeforeApplicationShutdown,
  Inject,
  Injectable,
  Logger,
  OnApplicationBootstrap,
  OnApplicationShutdown,
  Optional,
} from '@nestjs/common';
import {
  Metadata,
  Server,
  ServerCredentials,
  ServerUnaryCall,
  ServerWritableStream,
  ServiceDefinition,
  status as Status,
  UntypedHandleCall,
  sendUnaryData,
} from '@grpc/grpc-js';
import { ReflectionService } from '@grpc/reflection';
import { context as otelContext, Context, SpanKind, SpanStatusCode, TextMapGetter, trace } from '@opentelemetry/api';
import { ModuleRef } from '@nestjs/core';
import { ThrottlerStorage } from '@nestjs/throttler';
import { randomUUID } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { APP_INFO } from '../app.info';
import { cachePolicy } from '../cache/prediction-cache.middleware';
import { DomainError, RateLimitedError } from '../common/domain.errors';
import { EventCancellation, OpenedContext, RequestContext } from '../common/request-context';
import { AppConfig } from '../config/app.config';
import { ReadinessIndicators } from '../health/readiness.indicators';
import { V2_EXTENSIONS } from '../inference-protocol/v2.controller';
import { encodeConfig, encodeMetadata, encodeStatistics } from '../inference-protocol/v2.codec';
import { PredictionService } from '../prediction/prediction.service';
import { extractParent, startSpan, traceIds, tracingOn } from '../observability/tracing';
import { ApiKeyStore } from '../security/api-key.store';
import { ModelControlService } from '../models/model-control.service';
import { authorize, keyOf, openPathMatcher, requiredScope } from '../security/api-key.middleware';
import {
  decodeInputs,
  encodeInferResponse,
  InputLimits,
  loadRequestOf,
  ModelInferRequest,
  ModelRepositoryParameter,
  versionOf,
} from './grpc.codec';
import { loadDefinitions } from './grpc.proto';
import { hostInUrl } from '../http/listen-host';
import { toCallError } from './grpc-status';

const SERVICE = 'inference.GRPCInferenceService';
const HEALTH = 'grpc.health.v1.Health';
const SAFE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
const ONE_MINUTE_MS = 60000;
/** How often a health Watch stream re-reads readiness, to send a change. */
const WATCH_INTERVAL_MS = 1000;

/** Codes that are the server's failure, after the semantic conventions for gRPC server spans. */
const SERVER_FAILURES = new Set([
  Status.UNKNOWN,
  Status.DEADLINE_EXCEEDED,
  Status.UNIMPLEMENTED,
  Status.INTERNAL,
  Status.UNAVAILABLE,
  Status.DATA_LOSS,
]);

/** traceparent and tracestate from a call's metadata, as the W3C propagator reads headers. */
const metadataGetter: TextMapGetter<Metadata> = {
  keys: (metadata) => Object.keys(metadata.getMap()),
  get: (metadata, key) => first(metadata, key),
};

/** The REST probe each RPC answers the same question as, for AUTH_OPEN_PATHS. */
const PROBE_OF: Readonly<Record<string, string>> = {
  ServerLive: '/v2/health/live',
  ServerReady: '/v2/health/ready',
};

/**
 * The REST route each RPC that changes the server does the same as, for the scope it needs (the
 * admin scope: security/api-key.middleware.ts decides it for both protocols). The model's name is
 * not put in the path: whatever a client names, the scope is the route's.
 */
const ROUTE_OF: Readonly<Record<string, string>> = {
  RepositoryModelLoad: '/v2/repository/models/{model}/load',
  RepositoryModelUnload: '/v2/repository/models/{model}/unload',
};

interface RepositoryModelRequest {
  readonly repository_name: string;
  readonly model_name: string;
  readonly parameters: Readonly<Record<string, ModelRepositoryParameter>>;
}

type Handler<Req, Res> = (request: Req, context: RequestContext, method: string) => Promise<Res> | Res;

/** The first value of a metadata key, as text. */
const first = (metadata: Metadata, key: string): string | undefined => {
  const [value] = metadata.get(key);
  return typeof value === 'string' ? value : undefined;
};

/**
 * The Open Inference Protocol's gRPC service (KServe's grpc_predict_v2 and Triton's extensions),
 * with grpc.health.v1 and server reflection, on GRPC_PORT in the same process as HTTP. Built on
 * @grpc/grpc-js directly rather than @nestjs/microservices: a handler needs the call itself (its
 * deadline, its cancellation, its metadata, the peer), the health and reflection services must sit
 * on the same server, and shutdown must drain it in step with HTTP; Nest's transport hides the
 * first and adds an rxjs chain per call. Every RPC calls the same PredictionService as HTTP.
 */
@Injectable()
export class GrpcServer implements OnApplicationBootstrap, BeforeApplicationShutdown, OnApplicationShutdown {
  private readonly logger = new Logger('gRPC');
  private server: Server | undefined;
  private boundPort: number | undefined;
  private readonly watchers = new Set<NodeJS.Timeout>();
  private readonly limits: InputLimits;
  private readonly isOpen: (path: string) => boolean;
  /** Whether LOG_LEVEL keeps the line of each call: decided once, not per call. */
  private readonly logsCalls: boolean;
  /** The key store exists only when keys are configured (see SecurityModule). */
  private keys: ApiKeyStore | undefined;

  constructor(
    private readonly config: AppConfig,
    private readonly predictions: PredictionService,
    private readonly indicators: ReadinessIndicators,
    private readonly control: ModelControlService,
    private readonly moduleRef: ModuleRef,
    @Optional() @Inject(ThrottlerStorage) private readonly throttler?: ThrottlerStorage,
  ) {
    this.limits = { maxArrayLength: config.MAX_ARRAY_LENGTH, maxStringLength: config.MAX_STRING_LENGTH };
    this.isOpen = openPathMatcher(config.openPaths());
    this.logsCalls = config.logsAt('info');
  }

  /** The port the server listens on (GRPC_PORT, or the one the system chose for 0); undefined when off. */
  get port(): number | undefined {
    return this.boundPort;
  }

  async onApplicationBootstrap(): Promise<void> {
    if (!this.config.GRPC_ENABLED) return;
    if (this.config.apiKeysEnabled()) this.keys = this.moduleRef.get(ApiKeyStore, { strict: false });
    const definitions = loadDefinitions();
    const server = new Server({
      'grpc.max_receive_message_length': this.config.GRPC_MAX_MESSAGE_BYTES,
      'grpc.max_send_message_length': this.config.GRPC_MAX_MESSAGE_BYTES,
    });
    server.addService(definitions[SERVICE] as ServiceDefinition, this.inferenceHandlers());
    server.addService(definitions[HEALTH] as ServiceDefinition, this.healthHandlers());
    new ReflectionService(definitions).addToServer(server);
    const address = `${hostInUrl(this.config.HOST)}:${this.config.GRPC_PORT}`;
    this.boundPort = await new Promise<number>((resolve, reject) =>
      server.bindAsync(address, ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port))),
    );
    this.server = server;
    this.logger.log(
      `listening on ${hostInUrl(this.config.HOST)}:${this.boundPort} (gRPC: ${SERVICE}, ${HEALTH}, reflection)`,
    );
  }

  /**
   * Part of app.close(), before the models are released: the server stops taking calls and waits
   * for every call in flight, queued inference included, so none is cut off. main.ts bounds the
   * wait by SHUTDOWN_TIMEOUT_MS, as it does HTTP's.
   */
  async beforeApplicationShutdown(): Promise<void> {
    for (const timer of this.watchers) clearInterval(timer);
    this.watchers.clear();
    const server = this.server;
    if (!server) return;
    await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
  }

  /** Whatever is still open once the application is down (a Watch stream) is cut. */
  onApplicationShutdown(): void {
    this.server?.forceShutdown();
    this.server = undefined;
  }

  private inferenceHandlers(): Record<string, UntypedHandleCall> {
    return {
      ServerLive: this.unary('ServerLive', () => ({ live: true })),
      ServerReady: this.unary('ServerReady', async () => ({ ready: await this.indicators.ready() })),
      ModelReady: this.unary('ModelReady', (r: { name: string; version: string }) => ({
        ready: this.predictions.isReady(r.name, versionOf(r.version)),
      })),
      ServerMetadata: this.unary('ServerMetadata', () => ({
        name: APP_INFO.name,
        version: APP_INFO.version,
        extensions: [...V2_EXTENSIONS],
      })),
      ModelMetadata: this.unary('ModelMetadata', (r: { name: string; version: string }) =>
        encodeMetadata(this.predictions.describeModel(r.name, versionOf(r.version))),
      ),
      ModelInfer: this.unary('ModelInfer', async (r: ModelInferRequest, context) => {
        const inputs = decodeInputs(r, this.limits);
        const result = await this.predictions.infer(r.model_name, versionOf(r.model_version), inputs, context);
        return encodeInferResponse(r, result);
      }),
      ModelConfig: this.unary('ModelConfig', (r: { name: string; version: string }) => ({
        config: encodeConfig(this.predictions.describeModel(r.name, versionOf(r.version))),
      })),
      ModelStatistics: this.unary('ModelStatistics', (r: { name: string; version: string }) =>
        encodeStatistics(this.predictions.statistics(r.name || undefined, versionOf(r.version))),
      ),
      // The same rows as POST /v2/repository/index, models on disk that are not loaded included.
      RepositoryIndex: this.unary('RepositoryIndex', async (r: { repository_name: string; ready: boolean }) => ({
        models: (await this.control.index(r.ready)).map((m) => ({
          name: m.name,
          version: m.version ?? '',
          state: m.state,
          reason: m.reason ?? '',
        })),
      })),
      RepositoryModelLoad: this.unary('RepositoryModelLoad', async (r: RepositoryModelRequest) => {
        await this.control.load(r.model_name, loadRequestOf(r.parameters, this.limits));
        return {};
      }),
      // Its parameters (unload_dependents) have no meaning here, as over REST.
      RepositoryModelUnload: this.unary('RepositoryModelUnload', async (r: RepositoryModelRequest) => {
        await this.control.unload(r.model_name);
        return {};
      }),
    };
  }

  /**
   * A unary RPC: its context (request id, deadline from grpc-timeout, cancellation), the key and
   * rate-limit checks of HTTP, the handler, and its answer or its error as a status with the
   * message the REST routes give. One log line per call, as HTTP has per request.
   */
  private unary<Req, Res>(method: string, handle: Handler<Req, Res>): UntypedHandleCall {
    return (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => {
      const start = process.hrtime.bigint();
      const traced = tracingOn() ? this.spanOf(call, method) : undefined;
      const { context, settle } = this.contextOf(call, traced);
      const done = (code: Status) => {
        settle();
        if (traced) this.endSpan(traced, code);
        // Not even built when LOG_LEVEL leaves it out: a small call's line is a good share of its cost.
        if (!this.logsCalls) return;
        this.logger.log(
          {
            msg: 'call',
            method,
            status: Status[code],
            model: context.served?.model,
            version: context.served?.version,
            batch_size: context.served?.batchSize,
            duration_ms: Number((Number(process.hrtime.bigint() - start) / 1e6).toFixed(3)),
            request_id: context.requestId,
            ...traceIds(traced),
          },
          'gRPC',
        );
      };
      const run = () => this.admit(method, call, context).then(() => handle(call.request, context, method));
      (traced ? otelContext.with(traced, run) : run()).then(
        (response) => {
          callback(null, response);
          done(Status.OK);
        },
        (err: unknown) => {
          const error = toCallError(err);
          if (error.code === Status.INTERNAL && !(err instanceof DomainError)) {
            this.logger.error(`${method} failed: ${(err as Error).stack ?? String(err)}`);
          }
          callback({ code: error.code, details: error.details, metadata: error.metadata });
          done(error.code);
        },
      );
    };
  }

  /**
   * The call's context: its id, its deadline (grpc-timeout, capped by REQUEST_TIMEOUT_MS), and a
   * signal that the call's cancellation fires, so the batcher drops it. `settle` is for once the
   * call is answered: grpc-js emits 'cancelled' after every status it sends, answered calls
   * included, and an abort then would cost an exception object and a dispatch to listeners for
   * nothing.
   */
  private contextOf(
    call: ServerUnaryCall<unknown, unknown>,
    traced: Context | undefined,
  ): { context: RequestContext; settle: () => void } {
    const sent = first(call.metadata, 'x-request-id');
    const requested = call.getDeadline();
    const deadline = Math.min(
      requested instanceof Date ? requested.getTime() : requested,
      Date.now() + this.config.REQUEST_TIMEOUT_MS,
    );
    // The signal is made only when inference queues, as on HTTP; a call already cancelled is aborted at once.
    let answered = false;
    const headers: IncomingHttpHeaders = {
      'cache-control': first(call.metadata, 'cache-control'),
      pragma: first(call.metadata, 'pragma'),
    };
    const routingKey = first(call.metadata, 'x-routing-key');
    const context = new OpenedContext(
      sent !== undefined && SAFE_REQUEST_ID.test(sent) ? sent : randomUUID(),
      deadline,
      routingKey === '' ? undefined : routingKey,
      traced,
      () => new EventCancellation(call, 'cancelled', () => !answered && call.cancelled),
    );
    context.cache = cachePolicy(headers);
    // Answered: a cancellation after this is no client leaving (the signal's listener asks).
    const settle = () => {
      answered = true;
    };
    return { context, settle };
  }

  /**
   * The call's server span, continuing the traceparent of its metadata, after the semantic
   * conventions for gRPC: named by the full method, as rpc.method.
   */
  private spanOf(call: ServerUnaryCall<unknown, unknown>, method: string): Context | undefined {
    const parent = extractParent(call.metadata, metadataGetter);
    const span = startSpan(
      `${SERVICE}/${method}`,
      parent,
      {
        'rpc.system.name': 'grpc',
        'rpc.method': `${SERVICE}/${method}`,
        'server.port': this.boundPort,
        'client.address': peerAddress(call.getPeer()),
      },
      SpanKind.SERVER,
    );
    return span && trace.setSpan(parent, span);
  }

  private endSpan(traced: Context, code: Status): void {
    const span = trace.getSpan(traced)!;
    span.setAttribute('rpc.status_code', Status[code]);
    if (SERVER_FAILURES.has(code)) {
      span.setAttribute('error.type', Status[code]);
      span.setStatus({ code: SpanStatusCode.ERROR });
    }
    span.end();
  }

  /** The API key (metadata `authorization: Bearer <key>` or `x-api-key`) and the rate limit, as on HTTP. */
  private async admit(method: string, call: ServerUnaryCall<unknown, unknown>, context: RequestContext): Promise<void> {
    const probe = PROBE_OF[method];
    if (this.keys && !(probe !== undefined && this.isOpen(probe))) {
      const match = authorize(
        (key) => this.keys!.lookup(key),
        keyOf(first(call.metadata, 'authorization'), first(call.metadata, 'x-api-key')),
        method in ROUTE_OF ? requiredScope('POST', ROUTE_OF[method]) : 'inference',
      );
      context.client = `key:${match.id}`;
    }
    // The probes are never limited, as on HTTP.
    const rpm = this.config.RATE_LIMIT_RPM;
    if (this.throttler && rpm !== undefined && probe === undefined) {
      const tracker = context.client ?? `ip:${peerAddress(call.getPeer())}`;
      // The same key as the HTTP guard's (rate-limit.guard.ts): one budget per caller over both protocols.
      const { isBlocked, timeToBlockExpire } = await this.throttler.increment(
        `rate-limit:default:${tracker}`,
        ONE_MINUTE_MS,
        rpm,
        ONE_MINUTE_MS,
        'default',
      );
      if (isBlocked) throw new RateLimitedError(Math.max(1, Math.ceil(timeToBlockExpire)), rpm);
    }
  }

  /**
   * grpc.health.v1: the empty service name and the inference service answer readiness (the same
   * truth as GET /health/ready), `liveness` answers SERVING while the process answers at all, for
   * Kubernetes' gRPC probes; any other name is NOT_FOUND, as the health protocol asks.
   */
  private healthHandlers(): Record<string, UntypedHandleCall> {
    const statusOf = async (service: string): Promise<'SERVING' | 'NOT_SERVING' | undefined> => {
      if (service === 'liveness') return 'SERVING';
      if (service !== '' && service !== SERVICE) return undefined;
      return (await this.indicators.ready()) ? 'SERVING' : 'NOT_SERVING';
    };
    return {
      Check: (call: ServerUnaryCall<{ service: string }, unknown>, callback: sendUnaryData<unknown>) => {
        statusOf(call.request.service).then(
          (status) =>
            status
              ? callback(null, { status })
              : callback({ code: Status.NOT_FOUND, details: `Unknown service '${call.request.service}'` }),
          () => callback({ code: Status.INTERNAL, details: 'Internal server error' }),
        );
      },
      Watch: (call: ServerWritableStream<{ service: string }, unknown>) => {
        let last: string | undefined;
        const send = () =>
          void statusOf(call.request.service).then((status) => {
            const current = status ?? 'SERVICE_UNKNOWN';
            if (current !== last && !call.cancelled) call.write({ status: current });
            last = current;
          });
        send();
        const timer = setInterval(send, WATCH_INTERVAL_MS);
        this.watchers.add(timer);
        call.on('cancelled', () => {
          clearInterval(timer);
          this.watchers.delete(timer);
        });
      },
    };
  }
}

/** The client's address from grpc-js's peer string (`127.0.0.1:5000`, `[::1]:5000`, `ipv4:…`). */
function peerAddress(peer: string): string {
  const bare = peer.replace(/^ipv[46]:/, '');
  const bracketed = /^\[([^\]]+)\]/.exec(bare);
  if (bracketed) return bracketed[1];
  const colon = bare.lastIndexOf(':');
  return colon > 0 && bare.indexOf(':') === colon ? bare.slice(0, colon) : bare;
}
