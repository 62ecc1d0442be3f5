import { Body, Controller, HttpCode, Param, Post } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiParam, ApiTags } from '@nestjs/swagger';
import { ApiCacheControl, CACHE_RESPONSE_HEADERS } from '../cache/prediction-cache.middleware';
import { ApiPredictErrors } from '../common/api-errors.decorator';
import { ReqContext, RequestContext } from '../common/request-context';
import { BatchPredictRequestDto, PredictRequestDto } from './dto/predict-request.dto';
import { BatchPredictResponseDto, PredictResponseDto } from './dto/prediction.dto';
import { parseVersion, PredictionResult, PredictionService } from './prediction.service';

const MODEL = ApiParam({ name: 'model', example: 'iris' });
const VERSION = ApiParam({ name: 'version', schema: { type: 'integer', minimum: 1 }, example: 1 });

function single(result: PredictionResult): PredictResponseDto {
  return { model: result.model, version: result.version, ...result.predictions[0], latency_ms: result.latencyMs };
}

function batch(result: PredictionResult): BatchPredictResponseDto {
  return {
    model: result.model,
    version: result.version,
    predictions: result.predictions,
    latency_ms: result.latencyMs,
  };
}

@ApiTags('predictions')
@ApiCacheControl()
@Controller('v1/models/:model')
export class PredictController {
  constructor(private readonly predictions: PredictionService) {}

  @Post('predict')
  @HttpCode(200)
  @ApiOperation({ operationId: 'predict', summary: "Predict one instance with the model's default version" })
  @MODEL
  @ApiOkResponse({ type: PredictResponseDto, headers: CACHE_RESPONSE_HEADERS })
  @ApiPredictErrors()
  async predict(
    @Param('model') model: string,
    @Body() body: PredictRequestDto,
    @ReqContext() context?: RequestContext,
  ): Promise<PredictResponseDto> {
    return single(await this.predictions.predict(model, undefined, [body], () => '', context));
  }

  @Post('versions/:version/predict')
  @HttpCode(200)
  @ApiOperation({ operationId: 'predictVersion', summary: 'Predict one instance with a given version' })
  @MODEL
  @VERSION
  @ApiOkResponse({ type: PredictResponseDto, headers: CACHE_RESPONSE_HEADERS })
  @ApiPredictErrors()
  async predictVersion(
    @Param('model') model: string,
    @Param('version') version: string,
    @Body() body: PredictRequestDto,
    @ReqContext() context?: RequestContext,
  ): Promise<PredictResponseDto> {
    return single(await this.predictions.predict(model, parseVersion(version), [body], () => '', context));
  }

  @Post('predict/batch')
  @HttpCode(200)
  @ApiOperation({
    operationId: 'predictBatch',
    summary: "Predict many instances in one run with the model's default version",
  })
  @MODEL
  @ApiOkResponse({ type: BatchPredictResponseDto, headers: CACHE_RESPONSE_HEADERS })
  @ApiPredictErrors()
  async predictBatch(
    @Param('model') model: string,
    @Body() body: BatchPredictRequestDto,
    @ReqContext() context?: RequestContext,
  ): Promise<BatchPredictResponseDto> {
    return batch(await this.predictions.predict(model, undefined, body.instances, (i) => `instances[${i}]`, context));
  }

  @Post('versions/:version/predict/batch')
  @HttpCode(200)
  @ApiOperation({
    operationId: 'predictBatchVersion',
    summary: 'Predict many instances in one run with a given version',
  })
  @MODEL
  @VERSION
  @ApiOkResponse({ type: BatchPredictResponseDto, headers: CACHE_RESPONSE_HEADERS })
  @ApiPredictErrors()
  async predictBatchVersion(
    @Param('model') model: string,
    @Param('version') version: string,
    @Body() body: BatchPredictRequestDto,
    @ReqContext() context?: RequestContext,
  ): Promise<BatchPredictResponseDto> {
    return batch(
      await this.predictions.predict(model, parseVersion(version), body.instances, (i) => `instances[${i}]`, context),
    );
  }
}
