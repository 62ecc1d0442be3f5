import { ApiProperty } from '@nestjs/swagger';

/** The lesson's health answer, kept field for field. */
export class HealthDto {
  @ApiProperty({
    enum: ['healthy', 'degraded', 'unhealthy'],
    example: 'healthy',
    description: 'healthy: every model READY; degraded: some READY; unhealthy: none',
  })
  readonly status!: string;

  @ApiProperty({ type: [String], example: ['digits', 'iris'], description: 'Models with every version READY' })
  readonly models_loaded!: string[];
}

export class LiveDto {
  @ApiProperty({ example: 'ok' })
  readonly status!: string;
}

/** Terminus's probe answer: each check under `info` (up) or `error` (down), all under `details`. */
export class ProbeDto {
  @ApiProperty({ enum: ['ok', 'error', 'shutting_down'], example: 'error' })
  readonly status!: string;

  @ApiProperty({ type: 'object', additionalProperties: true, example: { shutdown: { status: 'up' } } })
  readonly info!: Record<string, unknown>;

  @ApiProperty({
    type: 'object',
    additionalProperties: true,
    example: {
      models: {
        status: 'down',
        ready: ['iris'],
        failing: { digits: 'FAILED: version 1: self-test sample 0: output_label expected 3, got 5' },
      },
    },
  })
  readonly error!: Record<string, unknown>;

  @ApiProperty({ type: 'object', additionalProperties: true })
  readonly details!: Record<string, unknown>;
}
