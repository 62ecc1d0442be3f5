import { Controller, Get, Res, ServiceUnavailableException } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiServiceUnavailableResponse, ApiTags } from '@nestjs/swagger';
import { HealthCheckResult, HealthCheckService, HealthIndicatorFunction } from '@nestjs/terminus';
import { ModelRegistry } from '../models/model.registry';
import { HealthDto, LiveDto, ProbeDto } from './dto/health.dto';
import { ReadinessIndicators } from './readiness.indicators';

/** Express's response and Fastify's reply both have status(code). */
type Status = { status(code: number): unknown };

@ApiTags('health')
// Probes are never rate limited: a limited client must not make Kubernetes restart or unroute the pod.
@Controller('health')
export class HealthController {
  constructor(
    private readonly registry: ModelRegistry,
    private readonly terminus: HealthCheckService,
    private readonly indicators: ReadinessIndicators,
  ) {}

  @Get('live')
  @ApiOperation({
    operationId: 'live',
    summary:
      'Liveness: the process and its event loop answer (no dependency is checked, so an outage elsewhere never restarts the pod)',
  })
  @ApiOkResponse({ type: LiveDto })
  live(): LiveDto {
    return { status: 'ok' };
  }

  @Get('ready')
  @ApiOperation({
    operationId: 'ready',
    summary:
      'Readiness: 200 only when every model is loaded, warmed and self-tested, the service is not shutting down, and Redis answers (with REDIS_URL, unless READY_REQUIRES_REDIS=false)',
  })
  @ApiOkResponse({ type: ProbeDto })
  @ApiServiceUnavailableResponse({ type: ProbeDto, description: 'Not ready: `error` names each failing check and why' })
  ready(@Res({ passthrough: true }) res: Status): Promise<HealthCheckResult> {
    return this.probe(res, this.indicators.readiness());
  }

  @Get('startup')
  @ApiOperation({
    operationId: 'startup',
    summary: 'Startup: 200 once every model has finished loading, whether it serves or failed',
  })
  @ApiOkResponse({ type: ProbeDto })
  @ApiServiceUnavailableResponse({ type: ProbeDto })
  startup(@Res({ passthrough: true }) res: Status): Promise<HealthCheckResult> {
    return this.probe(res, [() => this.indicators.loading()]);
  }

  @Get()
  @ApiOperation({
    operationId: 'health',
    summary: "The lesson's health check: 200 while any model serves, 503 when none does",
  })
  @ApiOkResponse({ type: HealthDto })
  @ApiServiceUnavailableResponse({ type: HealthDto })
  health(@Res({ passthrough: true }) res: Status): HealthDto {
    const models = this.registry.list();
    const loaded = models.filter((m) => this.registry.stateOf(m).state === 'READY').map((m) => m.name);
    const status =
      models.length > 0 && loaded.length === models.length ? 'healthy' : loaded.length > 0 ? 'degraded' : 'unhealthy';
    if (status === 'unhealthy') res.status(503);
    return { status, models_loaded: loaded };
  }

  /** Terminus answers an unhealthy check by throwing; the probe's body is the same either way. */
  private async probe(res: Status, checks: HealthIndicatorFunction[]): Promise<HealthCheckResult> {
    try {
      return await this.terminus.check(checks);
    } catch (err) {
      if (!(err instanceof ServiceUnavailableException)) throw err;
      res.status(503);
      return err.getResponse() as HealthCheckResult;
    }
  }
}
