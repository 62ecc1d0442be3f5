import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import * as path from 'node:path';
import { ROOT } from './app';

/**
 * A @grpc/grpc-js client of the service, generated from the .proto files at test time, as any client
 * of the protocol would be: nothing of src/ is used to talk to it.
 */
const definitions = loadSync(
  [
    path.join(ROOT, 'proto', 'grpc_service.proto'),
    path.join(ROOT, 'node_modules/grpc-health-check/proto/health/v1/health.proto'),
  ],
  { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true },
);
const loaded = grpc.loadPackageDefinition(definitions) as unknown as {
  inference: { GRPCInferenceService: grpc.ServiceClientConstructor };
  grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } };
};

type Callback = (err: grpc.ServiceError | null, response: Record<string, unknown>) => void;
type Rpc = (
  request: object,
  metadata: grpc.Metadata,
  options: grpc.CallOptions,
  callback: Callback,
) => grpc.ClientUnaryCall;

export interface Clients {
  readonly inference: grpc.Client & Record<string, Rpc>;
  readonly health: grpc.Client & Record<string, Rpc>;
  close(): void;
}

/** Clients of the service on that port, at 127.0.0.1 unless another address (IPv6 in brackets) is given. */
export function connect(port: number, host = '127.0.0.1'): Clients {
  const address = `${host}:${port}`;
  const credentials = grpc.credentials.createInsecure();
  const options = {
    'grpc.max_receive_message_length': 64 * 1024 * 1024,
    'grpc.max_send_message_length': 64 * 1024 * 1024,
  };
  const inference = new loaded.inference.GRPCInferenceService(address, credentials, options) as Clients['inference'];
  const health = new loaded.grpc.health.v1.Health(address, credentials) as Clients['health'];
  return {
    inference,
    health,
    close: () => {
      inference.close();
      health.close();
    },
  };
}

export interface CallOutcome<T = Record<string, unknown>> {
  readonly response?: T;
  readonly error?: grpc.ServiceError;
}

/** Calls one unary RPC; resolves with its answer or its error, never rejects. */
export function call<T = Record<string, unknown>>(
  client: Record<string, Rpc>,
  method: string,
  request: object,
  { metadata = {}, deadlineMs }: { metadata?: Record<string, string>; deadlineMs?: number } = {},
): Promise<CallOutcome<T>> & { cancel(): void } {
  const md = new grpc.Metadata();
  for (const [k, v] of Object.entries(metadata)) md.set(k, v);
  let pending: grpc.ClientUnaryCall | undefined;
  const promise = new Promise<CallOutcome<T>>((resolve) => {
    pending = client[method](
      request,
      md,
      deadlineMs === undefined ? {} : { deadline: Date.now() + deadlineMs },
      (error, response) => resolve(error ? { error } : { response: response as T }),
    );
  });
  return Object.assign(promise, { cancel: () => pending!.cancel() });
}

/** Calls one unary RPC and fails with the status's message when it does not answer OK. */
export async function ok<T = Record<string, unknown>>(
  client: Record<string, Rpc>,
  method: string,
  request: object,
  metadata?: Record<string, string>,
): Promise<T> {
  const { response, error } = await call<T>(client, method, request, { metadata });
  if (error) throw new Error(`${method}: ${grpc.status[error.code]} ${error.details}`);
  return response!;
}

export { grpc };
