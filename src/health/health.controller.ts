import { Controller, Get, Res } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiServiceUnavailableResponse, ApiTags } from '@nestjs/swagger';
import { ModelRegistry } from '../models/model.registry';
import { HealthDto, LiveDto } from './dto/health.dto';

@ApiTags('health')
@Controller('health')
export class HealthController {
  constructor(private readonly registry: ModelRegistry) {}

  @Get('live')
  @ApiOperation({ operationId: 'live', summary: 'Liveness: the process and its event loop answer (no dependency is checked)' })
  @ApiOkResponse({ type: LiveDto })
  live(): LiveDto {
    return { status: 'ok' };
  }

  @Get()
  @ApiOperation({ operationId: 'health', summary: "The lesson's health check: 200 while any model serves, 503 when none does" })
  @ApiOkResponse({ type: HealthDto })
  @ApiServiceUnavailableResponse({ type: HealthDto })
  // Express's response and Fastify's reply both have status(code).
  health(@Res({ passthrough: true }) res: { status(code: number): unknown }): HealthDto {
    const models = this.registry.list();
    const loaded = models.filter((m) => this.registry.stateOf(m).state === 'READY').map((m) => m.name);
    const status = models.length > 0 && loaded.length === models.length ? 'healthy' : loaded.length > 0 ? 'degraded' : 'unhealthy';
    if (status === 'unhealthy') res.status(503);
    return { status, models_loaded: loaded };
  }
}
