import { Body, Controller, HttpCode, Post } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { ApiCacheControl, CACHE_RESPONSE_HEADERS } from '../cache/prediction-cache.middleware';
import { ApiPredictErrors } from '../common/api-errors.decorator';
import { InvalidInputError } from '../common/domain.errors';
import { ReqContext, RequestContext } from '../common/request-context';
import { LessonBatchResponseDto, LessonPredictResponseDto } from './dto/lesson.dto';
import { BatchPredictRequestDto, PredictRequestDto } from './dto/predict-request.dto';
import { Prediction, PredictionResult, PredictionService } from './prediction.service';

/**
 * The routes of the FastAPI service this project grew out of, with its field names, answered by
 * the default model, so that the lesson's clients keep working unchanged.
 */
@ApiTags('lesson-compatible')
@ApiCacheControl()
@Controller('predict')
export class LessonController {
  constructor(private readonly predictions: PredictionService) {}

  @Post()
  @HttpCode(200)
  @ApiOperation({
    operationId: 'lessonPredict',
    summary: "Predict one instance with the default model (the lesson's route)",
  })
  @ApiOkResponse({ type: LessonPredictResponseDto, headers: CACHE_RESPONSE_HEADERS })
  @ApiPredictErrors()
  async predict(
    @Body() body: PredictRequestDto,
    @ReqContext() context?: RequestContext,
  ): Promise<LessonPredictResponseDto> {
    const result = await this.run([body], () => '', context);
    const [p] = result.predictions;
    return {
      prediction: p.prediction,
      probability: p.probability,
      class_name: p.label,
      model_version: String(result.version),
      latency_ms: result.latencyMs,
    };
  }

  @Post('batch')
  @HttpCode(200)
  @ApiOperation({
    operationId: 'lessonPredictBatch',
    summary: "Predict many instances with the default model (the lesson's route)",
  })
  @ApiOkResponse({ type: LessonBatchResponseDto, headers: CACHE_RESPONSE_HEADERS })
  @ApiPredictErrors()
  async predictBatch(
    @Body() body: BatchPredictRequestDto,
    @ReqContext() context?: RequestContext,
  ): Promise<LessonBatchResponseDto> {
    const result = await this.run(body.instances, (i) => `instances[${i}]`, context);
    return {
      predictions: result.predictions.map((p) => p.prediction!),
      probabilities: result.predictions.map((p) => p.probability),
      class_names: result.predictions.map((p) => p.label),
      model_version: String(result.version),
      latency_ms: result.latencyMs,
    };
  }

  private async run(
    instances: unknown[],
    pathOf: (i: number) => string,
    context: RequestContext | undefined,
  ): Promise<PredictionResult & { predictions: (Prediction & { prediction: number })[] }> {
    const model = this.predictions.defaultModelName();
    const result = await this.predictions.predict(model, undefined, instances, pathOf, context);
    if (result.predictions.some((p) => p.prediction === null)) {
      throw new InvalidInputError(
        `The default model '${model}' is not a classifier; use POST /v1/models/${model}/predict`,
      );
    }
    return result as PredictionResult & { predictions: (Prediction & { prediction: number })[] };
  }
}
