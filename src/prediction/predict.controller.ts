import { Controller, HttpCode, Param, Post } from '@nestjs/common';
import { ValidBody } from '../common/request-validation.pipe';
import { ApiOperation, ApiParam, ApiTags } from '@nestjs/swagger';
import { ApiCachedOkResponse } from '../cache/prediction-cache.middleware';
import { ApiPredictErrors } from '../common/api-errors.decorator';
import { ParseLabelPipe, ParseVersionPipe } from '../common/parse-version.pipe';
import { VERSION_LABEL } from '../common/model-names';
import { ReqContext, RequestContext } from '../common/request-context';
import { BatchPredictRequestDto, PredictRequestDto } from './dto/predict-request.dto';
import { BatchPredictResponseDto, PredictResponseDto } from './dto/prediction.dto';
import { PredictionService } from './prediction.service';
import { toBatchResponse, toPredictResponse } from './v1.codec';
import { ApiRoutingKey } from '../common/routing-key.decorator';

const MODEL = ApiParam({ name: 'model', example: 'iris' });
const VERSION = ApiParam({ name: 'version', schema: { type: 'integer', minimum: 1 }, example: 1 });
const LABEL = ApiParam({
  name: 'label',
  description: "One of the model's config.json version_labels",
  schema: { type: 'string', pattern: VERSION_LABEL.source },
  example: 'stable',
});
const single = (_: number) => '';
const each = (i: number) => `instances[${i}]`;

@ApiTags('predictions')
@Controller('v1/models/:model')
export class PredictController {
  constructor(private readonly predictions: PredictionService) {}

  @Post('predict')
  @HttpCode(200)
  @ApiRoutingKey()
  @ApiOperation({ operationId: 'predict', summary: "Predict one instance with the model's default version" })
  @MODEL
  @ApiCachedOkResponse(PredictResponseDto)
  @ApiPredictErrors()
  async predict(
    @Param('model') model: string,
    @ValidBody() body: PredictRequestDto,
    @ReqContext() context?: RequestContext,
  ): Promise<PredictResponseDto> {
    return toPredictResponse(await this.predictions.predict(model, undefined, [body], single, context));
  }

  @Post('versions/:version/predict')
  @HttpCode(200)
  @ApiOperation({ operationId: 'predictVersion', summary: 'Predict one instance with a given version' })
  @MODEL
  @VERSION
  @ApiCachedOkResponse(PredictResponseDto)
  @ApiPredictErrors()
  async predictVersion(
    @Param('model') model: string,
    @Param('version', ParseVersionPipe) version: number,
    @ValidBody() body: PredictRequestDto,
    @ReqContext() context?: RequestContext,
  ): Promise<PredictResponseDto> {
    return toPredictResponse(await this.predictions.predict(model, version, [body], single, context));
  }

  @Post('predict/batch')
  @HttpCode(200)
  @ApiRoutingKey()
  @ApiOperation({
    operationId: 'predictBatch',
    summary: "Predict many instances in one run with the model's default version",
  })
  @MODEL
  @ApiCachedOkResponse(BatchPredictResponseDto)
  @ApiPredictErrors()
  async predictBatch(
    @Param('model') model: string,
    @ValidBody() body: BatchPredictRequestDto,
    @ReqContext() context?: RequestContext,
  ): Promise<BatchPredictResponseDto> {
    return toBatchResponse(await this.predictions.predict(model, undefined, body.instances, each, context));
  }

  @Post('versions/:version/predict/batch')
  @HttpCode(200)
  @ApiOperation({
    operationId: 'predictBatchVersion',
    summary: 'Predict many instances in one run with a given version',
  })
  @MODEL
  @VERSION
  @ApiCachedOkResponse(BatchPredictResponseDto)
  @ApiPredictErrors()
  async predictBatchVersion(
    @Param('model') model: string,
    @Param('version', ParseVersionPipe) version: number,
    @ValidBody() body: BatchPredictRequestDto,
    @ReqContext() context?: RequestContext,
  ): Promise<BatchPredictResponseDto> {
    return toBatchResponse(await this.predictions.predict(model, version, body.instances, each, context));
  }

  @Post('labels/:label/predict')
  @HttpCode(200)
  @ApiOperation({
    operationId: 'predictLabel',
    summary: 'Predict one instance with the version a label names (config.json version_labels)',
  })
  @MODEL
  @LABEL
  @ApiCachedOkResponse(PredictResponseDto)
  @ApiPredictErrors()
  async predictLabel(
    @Param('model') model: string,
    @Param('label', ParseLabelPipe) label: string,
    @ValidBody() body: PredictRequestDto,
    @ReqContext() context?: RequestContext,
  ): Promise<PredictResponseDto> {
    return toPredictResponse(await this.predictions.predict(model, label, [body], single, context));
  }

  @Post('labels/:label/predict/batch')
  @HttpCode(200)
  @ApiOperation({
    operationId: 'predictBatchLabel',
    summary: 'Predict many instances in one run with the version a label names (config.json version_labels)',
  })
  @MODEL
  @LABEL
  @ApiCachedOkResponse(BatchPredictResponseDto)
  @ApiPredictErrors()
  async predictBatchLabel(
    @Param('model') model: string,
    @Param('label', ParseLabelPipe) label: string,
    @ValidBody() body: BatchPredictRequestDto,
    @ReqContext() context?: RequestContext,
  ): Promise<BatchPredictResponseDto> {
    return toBatchResponse(await this.predictions.predict(model, label, body.instances, each, context));
  }
}
