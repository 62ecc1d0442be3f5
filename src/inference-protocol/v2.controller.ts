import { Body, Controller, Get, HttpCode, Param, Post, Res } from '@nestjs/common';
import {
  ApiBody,
  ApiOkResponse,
  ApiOperation,
  ApiParam,
  ApiResponse,
  ApiServiceUnavailableResponse,
  ApiTags,
} from '@nestjs/swagger';
import { SkipThrottle } from '@nestjs/throttler';
import { APP_INFO } from '../app.info';
import { ApiCacheControl, CACHE_RESPONSE_HEADERS } from '../cache/prediction-cache.middleware';
import { InvalidInputError, ModelNotReadyError } from '../common/domain.errors';
import { ReqContext, RequestContext } from '../common/request-context';
import { ReadinessIndicators } from '../health/readiness.indicators';
import { parseVersion, PredictionService } from '../prediction/prediction.service';
import {
  V2ErrorDto,
  V2InferRequestDto,
  V2InferResponseDto,
  V2LiveDto,
  V2ModelMetadataDto,
  V2ModelReadyDto,
  V2OutputTensorDto,
  V2ReadyDto,
  V2ServerMetadataDto,
} from './dto/v2.dto';
import { classify, fromV2Datatype, toV2Datatype, V2Datatype, v2Data } from './v2.datatypes';

/** Express's response and Fastify's reply both have status(code). */
type Status = { status(code: number): unknown };

const MODEL = ApiParam({ name: 'model', example: 'iris' });
const VERSION = ApiParam({ name: 'version', example: '1', schema: { type: 'string', pattern: '^[1-9][0-9]*$' } });
const ERRORS = [400, 404, 500, 503].map((status) =>
  ApiResponse({ status, type: V2ErrorDto, description: 'Triton status; body {"error": "..."}' }),
);

function errors(target: object, key: string, descriptor: PropertyDescriptor) {
  for (const decorate of ERRORS) decorate(target, key, descriptor);
}

/**
 * The Open Inference Protocol (KServe V2) over REST: another thin protocol layer over the same
 * PredictionService, so batching, validation and errors are shared with v1. Errors are answered as
 * `{"error": "..."}` by the exception filter for every path under /v2.
 */
@ApiTags('open-inference-protocol')
@Controller('v2')
export class V2Controller {
  constructor(
    private readonly predictions: PredictionService,
    private readonly indicators: ReadinessIndicators,
  ) {}

  @Get()
  @ApiOperation({ operationId: 'v2ServerMetadata', summary: 'Server metadata' })
  @ApiOkResponse({ type: V2ServerMetadataDto })
  server(): V2ServerMetadataDto {
    return { name: APP_INFO.name, version: APP_INFO.version, extensions: ['classification'] };
  }

  @Get('health/live')
  @SkipThrottle()
  @ApiOperation({ operationId: 'v2ServerLive', summary: 'Server liveness' })
  @ApiOkResponse({ type: V2LiveDto })
  live(): V2LiveDto {
    return { live: true };
  }

  @Get('health/ready')
  @SkipThrottle()
  @ApiOperation({
    operationId: 'v2ServerReady',
    summary: 'Server readiness: the same answer as GET /health/ready, without its body',
  })
  @ApiOkResponse({ type: V2ReadyDto })
  @ApiServiceUnavailableResponse({ type: V2ReadyDto })
  async ready(@Res({ passthrough: true }) res: Status): Promise<V2ReadyDto> {
    // The same truth as GET /health/ready.
    const ready = await this.indicators.ready();
    if (!ready) res.status(503);
    return { ready };
  }

  @Get('models/:model')
  @ApiOperation({ operationId: 'v2ModelMetadata', summary: "Model metadata (the default version's tensors)" })
  @MODEL
  @ApiOkResponse({ type: V2ModelMetadataDto })
  @errors
  metadata(@Param('model') model: string): V2ModelMetadataDto {
    return this.describe(model);
  }

  @Get('models/:model/versions/:version')
  @ApiOperation({ operationId: 'v2ModelVersionMetadata', summary: 'Model version metadata' })
  @MODEL
  @VERSION
  @ApiOkResponse({ type: V2ModelMetadataDto })
  @errors
  versionMetadata(@Param('model') model: string, @Param('version') version: string): V2ModelMetadataDto {
    return this.describe(model, parseVersion(version));
  }

  @Get('models/:model/ready')
  @ApiOperation({ operationId: 'v2ModelReady', summary: 'Model readiness: 200 when ready, 503 when not' })
  @MODEL
  @ApiOkResponse({ type: V2ModelReadyDto })
  @ApiServiceUnavailableResponse({ type: V2ModelReadyDto })
  @errors
  modelReady(@Param('model') model: string, @Res({ passthrough: true }) res: Status): V2ModelReadyDto {
    return this.readiness(model, undefined, res);
  }

  @Get('models/:model/versions/:version/ready')
  @ApiOperation({
    operationId: 'v2ModelVersionReady',
    summary: 'Model version readiness: 200 when ready, 503 when not',
  })
  @MODEL
  @VERSION
  @ApiOkResponse({ type: V2ModelReadyDto })
  @ApiServiceUnavailableResponse({ type: V2ModelReadyDto })
  @errors
  versionReady(
    @Param('model') model: string,
    @Param('version') version: string,
    @Res({ passthrough: true }) res: Status,
  ): V2ModelReadyDto {
    return this.readiness(model, parseVersion(version), res);
  }

  @Post('models/:model/infer')
  @ApiCacheControl()
  @HttpCode(200)
  @ApiOperation({ operationId: 'v2Infer', summary: "Inference with the model's default version" })
  @MODEL
  @ApiBody({ type: V2InferRequestDto })
  @ApiOkResponse({ type: V2InferResponseDto, headers: CACHE_RESPONSE_HEADERS })
  @errors
  infer(
    @Param('model') model: string,
    @Body() body: V2InferRequestDto,
    @ReqContext() context?: RequestContext,
  ): Promise<V2InferResponseDto> {
    return this.run(model, undefined, body, context);
  }

  @Post('models/:model/versions/:version/infer')
  @ApiCacheControl()
  @HttpCode(200)
  @ApiOperation({ operationId: 'v2InferVersion', summary: 'Inference with a given version' })
  @MODEL
  @VERSION
  @ApiBody({ type: V2InferRequestDto })
  @ApiOkResponse({ type: V2InferResponseDto, headers: CACHE_RESPONSE_HEADERS })
  @errors
  inferVersion(
    @Param('model') model: string,
    @Param('version') version: string,
    @Body() body: V2InferRequestDto,
    @ReqContext() context?: RequestContext,
  ): Promise<V2InferResponseDto> {
    return this.run(model, parseVersion(version), body, context);
  }

  private describe(model: string, version?: number): V2ModelMetadataDto {
    const d = this.predictions.describeModel(model, version);
    // Without a loaded session there are no tensors to describe; say why, as ready and infer do.
    if (d.version_state !== 'READY') {
      const reason = d.versions.find((v) => v.version === d.version)?.reason;
      throw new ModelNotReadyError(
        `Model '${d.name}' version ${d.version} is ${d.version_state}${reason ? `: ${reason}` : ''}`,
      );
    }
    const tensors = (list: typeof d.inputs) =>
      list.map((t) => ({ name: t.name, datatype: toV2Datatype(t.type), shape: [...t.shape] }));
    return {
      name: d.name,
      versions: d.versions.map((v) => String(v.version)),
      platform: 'onnx_onnxv1',
      inputs: tensors(d.inputs),
      outputs: tensors(d.outputs),
    };
  }

  private readiness(model: string, version: number | undefined, res: Status): V2ModelReadyDto {
    const ready = this.predictions.isReady(model, version);
    if (!ready) res.status(503);
    return { name: model, ready };
  }

  private async run(
    model: string,
    version: number | undefined,
    body: V2InferRequestDto,
    context?: RequestContext,
  ): Promise<V2InferResponseDto> {
    const inputs = body.inputs.map((i) => ({
      name: i.name,
      type: fromV2Datatype(i.datatype as V2Datatype),
      shape: i.shape,
      data: i.data,
    }));
    const result = await this.predictions.infer(model, version, inputs, context);
    const requested = body.outputs ?? Object.keys(result.outputs).map((name) => ({ name, parameters: undefined }));
    const outputs = requested.map((wanted, i): V2OutputTensorDto => {
      const tensor = result.outputs[wanted.name];
      if (!tensor) {
        throw new InvalidInputError(
          `Unknown output '${wanted.name}'; this model's outputs are ${Object.keys(result.outputs).join(', ')}`,
          [{ path: `outputs[${i}].name`, message: 'unknown output' }],
        );
      }
      const { binary_data: binary, classification: n } = wanted.parameters ?? {};
      if (binary !== undefined && binary !== false) {
        throw new InvalidInputError('Binary tensor data is not supported; send and receive JSON', [
          { path: `outputs[${i}].parameters.binary_data`, message: 'must be false' },
        ]);
      }
      if (n !== undefined && (typeof n !== 'number' || !Number.isInteger(n) || n < 1)) {
        throw new InvalidInputError('classification must be a positive integer', [
          { path: `outputs[${i}].parameters.classification`, message: `got ${JSON.stringify(n)}` },
        ]);
      }
      if (n !== undefined) {
        if (tensor.type === 'string' || tensor.type === 'bool') {
          throw new InvalidInputError(`Output '${wanted.name}' holds ${tensor.type}, not scores to classify`, [
            { path: `outputs[${i}].parameters.classification`, message: 'needs a numeric output' },
          ]);
        }
        return {
          name: wanted.name,
          datatype: 'BYTES',
          ...classify({ ...tensor, data: v2Data(tensor) }, n, result.labels),
        };
      }
      return { name: wanted.name, shape: [...tensor.dims], datatype: toV2Datatype(tensor.type), data: v2Data(tensor) };
    });
    return {
      model_name: result.model,
      model_version: String(result.version),
      ...(body.id !== undefined ? { id: body.id } : {}),
      outputs,
    };
  }
}
