import { Controller, Get, Param } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiParam, ApiTags } from '@nestjs/swagger';
import { ApiErrors } from '../common/api-errors.decorator';
import { ParseVersionPipe } from '../common/parse-version.pipe';
import { ModelDescriptionDto, ModelListDto } from './dto/model.dto';
import { PredictionService } from './prediction.service';
import { toDescription, toSummary } from './v1.codec';

@ApiTags('models')
@Controller('v1/models')
export class ModelsController {
  constructor(private readonly predictions: PredictionService) {}

  @Get()
  @ApiOperation({ operationId: 'listModels', summary: 'Every model in the repository, with its versions and state' })
  @ApiOkResponse({ type: ModelListDto })
  list(): ModelListDto {
    return { models: this.predictions.listModels().map(toSummary) };
  }

  @Get(':model')
  @ApiOperation({
    operationId: 'describeModel',
    summary: "A model's default version: inputs, outputs, labels, feature names",
  })
  @ApiParam({ name: 'model', example: 'iris' })
  @ApiOkResponse({ type: ModelDescriptionDto })
  @ApiErrors(404)
  describe(@Param('model') model: string): ModelDescriptionDto {
    return toDescription(this.predictions.describeModel(model));
  }

  @Get(':model/versions/:version')
  @ApiOperation({
    operationId: 'describeModelVersion',
    summary: 'One version of a model: inputs, outputs, labels, feature names',
  })
  @ApiParam({ name: 'model', example: 'iris' })
  @ApiParam({ name: 'version', schema: { type: 'integer', minimum: 1 }, example: 1 })
  @ApiOkResponse({ type: ModelDescriptionDto })
  @ApiErrors(400, 404)
  describeVersion(
    @Param('model') model: string,
    @Param('version', ParseVersionPipe) version: number,
  ): ModelDescriptionDto {
    return toDescription(this.predictions.describeModel(model, version));
  }
}
