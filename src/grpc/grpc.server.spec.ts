import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { Logger } from '@nestjs/common';
import type { ModuleRef } from '@nestjs/core';
import type { RequestContext } from '../common/request-context';
import { loadConfig } from '../config/app.config';
import type { ReadinessIndicators } from '../health/readiness.indicators';
import type { PredictionService, TensorResult } from '../prediction/prediction.service';
import { INFERENCE_PROTO, LOADER_OPTIONS } from './grpc.proto';
import { GrpcServer } from './grpc.server';

/**
 * The server on a real port, before a PredictionService that keeps each call's context and answers
 * when the test says: what the call's cancellation does to the signal the batcher watches.
 */

type InferClient = grpc.Client & {
  ModelInfer(request: object, callback: (err: grpc.ServiceError | null) => void): grpc.ClientUnaryCall;
};
const Client = (
  grpc.loadPackageDefinition(loadSync(INFERENCE_PROTO, LOADER_OPTIONS)) as unknown as {
    inference: { GRPCInferenceService: new (address: string, credentials: grpc.ChannelCredentials) => InferClient };
  }
).inference.GRPCInferenceService;

const RESULT: TensorResult = {
  model: 'm',
  version: 1,
  outputs: { y: { type: 'float32', dims: [1, 1], data: Float32Array.from([2]) } },
};
const REQUEST = {
  model_name: 'm',
  inputs: [{ name: 'x', datatype: 'FP32', shape: ['1', '1'], contents: { fp32_contents: [1] } }],
};

/** Resolves once `check` holds, polling on the event loop (no timing is asserted). */
async function until(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((resolve) => setImmediate(resolve));
}

describe('GrpcServer: a call and its signal', () => {
  const calls: { context: RequestContext; answer: () => void }[] = [];
  let server: GrpcServer;
  let client: InferClient;

  beforeAll(async () => {
    Logger.overrideLogger(false);
    const predictions = {
      infer: (_model: string, _version: number | undefined, _inputs: unknown, context: RequestContext) =>
        new Promise<TensorResult>((resolve) => {
          // Read as the batcher reads it when a request queues.
          void context.signal;
          calls.push({ context, answer: () => resolve(RESULT) });
        }),
    } as unknown as PredictionService;
    const indicators = { ready: () => Promise.resolve(true) } as unknown as ReadinessIndicators;
    const config = loadConfig({ HOST: '127.0.0.1', GRPC_PORT: '0' });
    server = new GrpcServer(config, predictions, indicators, {} as ModuleRef);
    await server.onApplicationBootstrap();
    client = new Client(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure());
  });
  afterAll(async () => {
    client.close();
    await server.beforeApplicationShutdown();
    server.onApplicationShutdown();
  });

  it('leaves the signal of an answered call alone, though grpc-js reports every finished call as cancelled', async () => {
    const done = new Promise<grpc.ServiceError | null>((resolve) => client.ModelInfer(REQUEST, resolve));
    await until(() => calls.length === 1);
    calls[0].answer();
    expect(await done).toBeNull();
    // A second call, answered after the first call's end has been reported, so that event has run.
    const next = new Promise<grpc.ServiceError | null>((resolve) => client.ModelInfer(REQUEST, resolve));
    await until(() => calls.length === 2);
    calls[1].answer();
    expect(await next).toBeNull();
    expect(calls[0].context.signal!.aborted).toBe(false);
    expect(calls[1].context.signal!.aborted).toBe(false);
  });

  it('aborts the signal of a call the client cancels while it waits', async () => {
    let call: grpc.ClientUnaryCall | undefined;
    const done = new Promise<grpc.ServiceError | null>((resolve) => (call = client.ModelInfer(REQUEST, resolve)));
    await until(() => calls.length === 3);
    call!.cancel();
    expect((await done)?.code).toBe(grpc.status.CANCELLED);
    await until(() => calls[2].context.signal!.aborted);
    expect(calls[2].context.signal!.aborted).toBe(true);
    calls[2].answer();
  });
});
