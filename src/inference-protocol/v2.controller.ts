import {
  Controller,
  createParamDecorator,
  ExecutionContext,
  Get,
  Headers,
  HttpCode,
  Param,
  Post,
  Res,
  StreamableFile,
} from '@nestjs/common';
import { ValidBody } from '../common/request-validation.pipe';
import {
  ApiBody,
  ApiOkResponse,
  ApiOperation,
  ApiParam,
  ApiResponse,
  ApiServiceUnavailableResponse,
  ApiTags,
} from '@nestjs/swagger';
import { APP_INFO } from '../app.info';
import { ApiCachedOkResponse } from '../cache/prediction-cache.middleware';
import { VERSION as VERSION_PATTERN, VERSION_LABEL } from '../common/model-names';
import { ParseVersionOrLabelPipe, ParseVersionPipe } from '../common/parse-version.pipe';
import { ReqContext, RequestContext } from '../common/request-context';
import { ReadinessIndicators } from '../health/readiness.indicators';
import { PredictionService } from '../prediction/prediction.service';
import {
  V2ErrorDto,
  V2InferRequestDto,
  V2InferResponseDto,
  V2LiveDto,
  V2ModelConfigDto,
  V2ModelMetadataDto,
  V2ModelReadyDto,
  V2ModelStatisticsDto,
  V2ReadyDto,
  V2ServerMetadataDto,
} from './dto/v2.dto';
import { AnyRequest } from '../common/request-context';
import { answerEncoding, encodeAnswer } from '../http/compression';
import { binaryTailOf } from '../http/v2-body';
import { frameAnswer } from './v2-binary.codec';
import { decodeInputs, encodeConfig, encodeMetadata, encodeResponse, encodeStatistics } from './v2.codec';
import { ApiRoutingKey } from '../common/routing-key.decorator';

/** The protocol's extensions this service implements, named as Triton names them, and no other. */
export const V2_EXTENSIONS = [
  'binary_tensor_data',
  'classification',
  'model_configuration',
  'model_repository',
  'statistics',
];

/** Express's response and Fastify's reply both have status(code) and header(name, value). */
type Status = { status(code: number): unknown };
type Reply = Status & { header(name: string, value: string): unknown };

/** The raw tensors after the JSON header of a binary request (see http/v2-body.ts). */
const BinaryTail = createParamDecorator((_: unknown, ctx: ExecutionContext) =>
  binaryTailOf(ctx.switchToHttp().getRequest<AnyRequest>()),
);

const MODEL = ApiParam({ name: 'model', example: 'iris' });
const VERSION = ApiParam({
  name: 'version',
  example: '1',
  schema: { type: 'string', pattern: VERSION_PATTERN.source },
});
/** Where the protocol's version field may also hold a label (config.json version_labels). */
const VERSION_OR_LABEL = ApiParam({
  name: 'version',
  example: '1',
  description: "A version number, or one of the model's config.json version_labels",
  schema: { type: 'string', pattern: `${VERSION_PATTERN.source}|${VERSION_LABEL.source}` },
});
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
  @ApiOperation({ operationId: 'v2ServerMetadata', summary: 'Server metadata (also at GET /v2/)' })
  @ApiOkResponse({ type: V2ServerMetadataDto })
  server(): V2ServerMetadataDto {
    return { name: APP_INFO.name, version: APP_INFO.version, extensions: [...V2_EXTENSIONS] };
  }

  // Declared before models/:model, so that Express's router, which matches in order, does not read `stats` as a model.
  @Get('models/stats')
  @ApiOperation({ operationId: 'v2Statistics', summary: 'Statistics extension: every version of every model' })
  @ApiOkResponse({ type: V2ModelStatisticsDto })
  statistics(): V2ModelStatisticsDto {
    return encodeStatistics(this.predictions.statistics());
  }

  @Get('health/live')
  @ApiOperation({ operationId: 'v2ServerLive', summary: 'Server liveness' })
  @ApiOkResponse({ type: V2LiveDto })
  live(): V2LiveDto {
    return { live: true };
  }

  @Get('health/ready')
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
    return encodeMetadata(this.predictions.describeModel(model));
  }

  @Get('models/:model/versions/:version')
  @ApiOperation({ operationId: 'v2ModelVersionMetadata', summary: 'Model version metadata' })
  @MODEL
  @VERSION_OR_LABEL
  @ApiOkResponse({ type: V2ModelMetadataDto })
  @errors
  versionMetadata(
    @Param('model') model: string,
    @Param('version', ParseVersionOrLabelPipe) version: number | string,
  ): V2ModelMetadataDto {
    return encodeMetadata(this.predictions.describeModel(model, version));
  }

  @Get('models/:model/config')
  @ApiOperation({
    operationId: 'v2ModelConfig',
    summary: "Model configuration extension: the default version's configuration in Triton's model-config JSON",
  })
  @MODEL
  @ApiOkResponse({ type: V2ModelConfigDto })
  @errors
  config(@Param('model') model: string): V2ModelConfigDto {
    return encodeConfig(this.predictions.describeModel(model));
  }

  @Get('models/:model/versions/:version/config')
  @ApiOperation({ operationId: 'v2ModelVersionConfig', summary: "Model configuration extension: one version's" })
  @MODEL
  @VERSION_OR_LABEL
  @ApiOkResponse({ type: V2ModelConfigDto })
  @errors
  versionConfig(
    @Param('model') model: string,
    @Param('version', ParseVersionOrLabelPipe) version: number | string,
  ): V2ModelConfigDto {
    return encodeConfig(this.predictions.describeModel(model, version));
  }

  @Get('models/:model/stats')
  @ApiOperation({ operationId: 'v2ModelStatistics', summary: 'Statistics extension: every version of a model' })
  @MODEL
  @ApiOkResponse({ type: V2ModelStatisticsDto })
  @errors
  modelStatistics(@Param('model') model: string): V2ModelStatisticsDto {
    return encodeStatistics(this.predictions.statistics(model));
  }

  @Get('models/:model/versions/:version/stats')
  @ApiOperation({ operationId: 'v2ModelVersionStatistics', summary: 'Statistics extension: one version of a model' })
  @MODEL
  @VERSION
  @ApiOkResponse({ type: V2ModelStatisticsDto })
  @errors
  versionStatistics(
    @Param('model') model: string,
    @Param('version', ParseVersionPipe) version: number,
  ): V2ModelStatisticsDto {
    return encodeStatistics(this.predictions.statistics(model, version));
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
  @VERSION_OR_LABEL
  @ApiOkResponse({ type: V2ModelReadyDto })
  @ApiServiceUnavailableResponse({ type: V2ModelReadyDto })
  @errors
  versionReady(
    @Param('model') model: string,
    @Param('version', ParseVersionOrLabelPipe) version: number | string,
    @Res({ passthrough: true }) res: Status,
  ): V2ModelReadyDto {
    return this.readiness(model, version, res);
  }

  @Post('models/:model/infer')
  @HttpCode(200)
  @ApiRoutingKey()
  @ApiOperation({
    operationId: 'v2Infer',
    summary: "Inference with the model's default version, or the versions its config.json traffic weighs",
  })
  @MODEL
  @ApiBody({ type: V2InferRequestDto })
  @ApiCachedOkResponse(V2InferResponseDto)
  @errors
  infer(
    @Param('model') model: string,
    @ValidBody() body: V2InferRequestDto,
    @BinaryTail() tail: Buffer,
    @Headers('accept-encoding') accept: string | undefined,
    @Res({ passthrough: true }) res: Reply,
    @ReqContext() context?: RequestContext,
  ): Promise<V2InferResponseDto | StreamableFile> {
    return this.run(model, undefined, body, tail, accept, res, context);
  }

  @Post('models/:model/versions/:version/infer')
  @HttpCode(200)
  @ApiOperation({ operationId: 'v2InferVersion', summary: 'Inference with a given version' })
  @MODEL
  @VERSION_OR_LABEL
  @ApiBody({ type: V2InferRequestDto })
  @ApiCachedOkResponse(V2InferResponseDto)
  @errors
  inferVersion(
    @Param('model') model: string,
    @Param('version', ParseVersionOrLabelPipe) version: number | string,
    @ValidBody() body: V2InferRequestDto,
    @BinaryTail() tail: Buffer,
    @Headers('accept-encoding') accept: string | undefined,
    @Res({ passthrough: true }) res: Reply,
    @ReqContext() context?: RequestContext,
  ): Promise<V2InferResponseDto | StreamableFile> {
    return this.run(model, version, body, tail, accept, res, context);
  }

  private readiness(model: string, version: number | string | undefined, res: Status): V2ModelReadyDto {
    const ready = this.predictions.isReady(model, version);
    if (!ready) res.status(503);
    return { name: model, ready };
  }

  /**
   * A JSON answer goes out as Nest writes any other; one with binary outputs, or one the client
   * accepts compressed, is written here as bytes (StreamableFile, which both adapters send as is).
   */
  private async run(
    model: string,
    version: number | string | undefined,
    body: V2InferRequestDto,
    tail: Buffer,
    accept: string | undefined,
    res: Reply,
    context?: RequestContext,
  ): Promise<V2InferResponseDto | StreamableFile> {
    const result = await this.predictions.infer(model, version, decodeInputs(body, tail), context);
    const { response, blobs } = encodeResponse(body, result);
    const encoding = answerEncoding(accept);
    res.header('Vary', 'Accept-Encoding');
    if (blobs.length === 0 && !encoding) return response;
    let payload: Buffer;
    let type: string;
    if (blobs.length > 0) {
      const framed = frameAnswer(JSON.stringify(response), blobs);
      res.header('Inference-Header-Content-Length', String(framed.headerLength));
      payload = framed.body;
      type = 'application/octet-stream';
    } else {
      payload = Buffer.from(JSON.stringify(response), 'utf8');
      type = 'application/json; charset=utf-8';
    }
    if (encoding) {
      payload = await encodeAnswer(payload, encoding);
      res.header('Content-Encoding', encoding);
    }
    return new StreamableFile(payload, { type, length: payload.length });
  }
}
