import { ApiProperty } from '@nestjs/swagger';

/** The lesson's health answer, kept field for field. */
export class HealthDto {
  @ApiProperty({ enum: ['healthy', 'degraded', 'unhealthy'], example: 'healthy', description: 'healthy: every model READY; degraded: some READY; unhealthy: none' })
  readonly status!: string;

  @ApiProperty({ type: [String], example: ['digits', 'iris'], description: 'Models with every version READY' })
  readonly models_loaded!: string[];
}

export class LiveDto {
  @ApiProperty({ example: 'ok' })
  readonly status!: string;
}
