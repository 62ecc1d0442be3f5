import { Controller, HttpCode, Post } from '@nestjs/common';
import { ValidBody } from '../common/request-validation.pipe';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import { ApiCachedOkResponse } from '../cache/prediction-cache.middleware';
import { ApiPredictErrors } from '../common/api-errors.decorator';
import { ReqContext, RequestContext } from '../common/request-context';
import { DefaultModelBatchResponseDto, DefaultModelPredictResponseDto } from './dto/default-model.dto';
import { BatchPredictRequestDto, PredictRequestDto } from './dto/predict-request.dto';
import { PredictionService } from './prediction.service';
import { toDefaultModelBatchResponse, toDefaultModelResponse } from './v1.codec';
import { ApiRoutingKey } from '../common/routing-key.decorator';

/**
 * The default model's short routes, with the field names of the FastAPI service this project
 * replaces, so that its clients keep working unchanged.
 */
@ApiTags('default-model')
@Controller('predict')
export class DefaultModelController {
  constructor(private readonly predictions: PredictionService) {}

  @Post()
  @HttpCode(200)
  @ApiRoutingKey()
  @ApiOperation({ operationId: 'predictDefault', summary: 'Predict one instance with the default model' })
  @ApiCachedOkResponse(DefaultModelPredictResponseDto)
  @ApiPredictErrors()
  async predict(
    @ValidBody() body: PredictRequestDto,
    @ReqContext() context?: RequestContext,
  ): Promise<DefaultModelPredictResponseDto> {
    return toDefaultModelResponse(await this.predictions.predictDefault([body], () => '', context));
  }

  @Post('batch')
  @HttpCode(200)
  @ApiRoutingKey()
  @ApiOperation({ operationId: 'predictDefaultBatch', summary: 'Predict many instances with the default model' })
  @ApiCachedOkResponse(DefaultModelBatchResponseDto)
  @ApiPredictErrors()
  async predictBatch(
    @ValidBody() body: BatchPredictRequestDto,
    @ReqContext() context?: RequestContext,
  ): Promise<DefaultModelBatchResponseDto> {
    const result = await this.predictions.predictDefault(body.instances, (i) => `instances[${i}]`, context);
    return toDefaultModelBatchResponse(result);
  }
}
