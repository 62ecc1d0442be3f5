import { ApiProperty } from '@nestjs/swagger';

const OUTPUTS_SCHEMA = {
  type: 'object',
  description: 'Every model output for this instance, by name (nested arrays; int64 beyond 2^53 as decimal strings)',
  additionalProperties: {},
  example: { output_label: 0, output_probability: [0.9847, 0.0153, 0.0] },
} as const;

export class PredictionDto {
  @ApiProperty({ type: 'integer', nullable: true, example: 0, description: 'Class index (classifiers only)' })
  readonly prediction!: number | null;

  @ApiProperty({ type: 'string', nullable: true, example: 'setosa', description: 'Class name from config.json labels' })
  readonly label!: string | null;

  @ApiProperty({ type: 'number', nullable: true, example: 0.9847, description: 'Probability of the predicted class' })
  readonly probability!: number | null;

  @ApiProperty({
    type: 'array',
    items: { type: 'number' },
    nullable: true,
    example: [0.9847, 0.0153, 0.0],
    description: 'Probability per class, by class index',
  })
  readonly probabilities!: number[] | null;

  @ApiProperty(OUTPUTS_SCHEMA)
  readonly outputs!: Record<string, unknown>;
}

export class PredictResponseDto extends PredictionDto {
  @ApiProperty({ example: 'iris' })
  readonly model!: string;

  @ApiProperty({ type: 'integer', example: 1 })
  readonly version!: number;

  @ApiProperty({
    example: 0.42,
    description: 'Time spent in the service for this request (validation and inference), ms',
  })
  readonly latency_ms!: number;
}

export class BatchPredictResponseDto {
  @ApiProperty({ example: 'iris' })
  readonly model!: string;

  @ApiProperty({ type: 'integer', example: 1 })
  readonly version!: number;

  @ApiProperty({ type: [PredictionDto], description: 'One result per instance, in request order' })
  readonly predictions!: PredictionDto[];

  @ApiProperty({ example: 0.61 })
  readonly latency_ms!: number;
}
