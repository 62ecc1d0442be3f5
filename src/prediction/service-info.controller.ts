import { Controller, Get } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { APP_INFO } from '../app.info';
import { ServiceInfoDto } from './dto/model.dto';
import { PredictionService } from './prediction.service';
import { toSummary } from './v1.codec';

@ApiTags('service')
@Controller()
export class ServiceInfoController {
  constructor(private readonly predictions: PredictionService) {}

  @Get()
  @ApiOperation({ operationId: 'serviceInfo', summary: 'Service name, version, models and where the documentation is' })
  @ApiOkResponse({ type: ServiceInfoDto })
  info(): ServiceInfoDto {
    return { ...APP_INFO, models: this.predictions.listModels().map(toSummary), docs: '/docs', openapi: '/docs-json' };
  }
}
