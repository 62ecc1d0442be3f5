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
import { APP_INFO } from '../app.info';
import { ApiCachedOkResponse } from '../cache/prediction-cache.middleware';
import { VERSION as VERSION_PATTERN } from '../common/model-names';
import { ParseVersionPipe } from '../common/parse-version.pipe';
import { ReqContext, RequestContext } from '../common/request-context';
import { ReadinessIndicators } from '../health/readiness.indicators';
import { PredictionService } from '../prediction/prediction.service';
import {
  V2ErrorDto,
  V2InferRequestDto,
  V2InferResponseDto,
  V2LiveDto,
  V2ModelMetadataDto,
  V2ModelReadyDto,
  V2ReadyDto,
  V2ServerMetadataDto,
} from './dto/v2.dto';
import { decodeInputs, encodeMetadata, encodeResponse } from './v2.codec';

/** Express's response and Fastify's reply both have status(code). */
type Status = { status(code: number): unknown };

const MODEL = ApiParam({ name: 'model', example: 'iris' });
const VERSION = ApiParam({
  name: 'version',
  example: '1',
  schema: { type: 'string', pattern: VERSION_PATTERN.source },
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
  @ApiOperation({ operationId: 'v2ServerMetadata', summary: 'Server metadata' })
  @ApiOkResponse({ type: V2ServerMetadataDto })
  server(): V2ServerMetadataDto {
    return { name: APP_INFO.name, version: APP_INFO.version, extensions: ['classification'] };
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
  @VERSION
  @ApiOkResponse({ type: V2ModelMetadataDto })
  @errors
  versionMetadata(
    @Param('model') model: string,
    @Param('version', ParseVersionPipe) version: number,
  ): V2ModelMetadataDto {
    return encodeMetadata(this.predictions.describeModel(model, version));
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
    @Param('version', ParseVersionPipe) version: number,
    @Res({ passthrough: true }) res: Status,
  ): V2ModelReadyDto {
    return this.readiness(model, version, res);
  }

  @Post('models/:model/infer')
  @HttpCode(200)
  @ApiOperation({ operationId: 'v2Infer', summary: "Inference with the model's default version" })
  @MODEL
  @ApiBody({ type: V2InferRequestDto })
  @ApiCachedOkResponse(V2InferResponseDto)
  @errors
  infer(
    @Param('model') model: string,
    @Body() body: V2InferRequestDto,
    @ReqContext() context?: RequestContext,
  ): Promise<V2InferResponseDto> {
    return this.run(model, undefined, body, context);
  }

  @Post('models/:model/versions/:version/infer')
  @HttpCode(200)
  @ApiOperation({ operationId: 'v2InferVersion', summary: 'Inference with a given version' })
  @MODEL
  @VERSION
  @ApiBody({ type: V2InferRequestDto })
  @ApiCachedOkResponse(V2InferResponseDto)
  @errors
  inferVersion(
    @Param('model') model: string,
    @Param('version', ParseVersionPipe) version: number,
    @Body() body: V2InferRequestDto,
    @ReqContext() context?: RequestContext,
  ): Promise<V2InferResponseDto> {
    return this.run(model, version, body, context);
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
    const result = await this.predictions.infer(model, version, decodeInputs(body), context);
    return encodeResponse(body, result);
  }
}
