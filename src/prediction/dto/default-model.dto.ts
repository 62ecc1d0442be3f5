import { ApiProperty } from '@nestjs/swagger';

/** Response of the default model's `POST /predict`, with the field names of the FastAPI service it replaces. */
export class DefaultModelPredictResponseDto {
  @ApiProperty({ type: 'integer', example: 0 })
  readonly prediction!: number;

  @ApiProperty({
    type: 'number',
    nullable: true,
    example: 0.9847,
    description: 'Probability of the predicted class; null for a model without probabilities',
  })
  readonly probability!: number | null;

  @ApiProperty({ type: 'string', nullable: true, example: 'setosa' })
  readonly class_name!: string | null;

  @ApiProperty({ example: '1', description: 'Version of the default model that answered' })
  readonly model_version!: string;

  @ApiProperty({ example: 0.35 })
  readonly latency_ms!: number;
}

/** Response of the default model's `POST /predict/batch`. */
export class DefaultModelBatchResponseDto {
  @ApiProperty({ type: [Number], example: [0, 2] })
  readonly predictions!: number[];

  @ApiProperty({ type: [Number], example: [0.9847, 0.9938], description: 'Probability of each predicted class' })
  readonly probabilities!: (number | null)[];

  @ApiProperty({ type: [String], nullable: true, example: ['setosa', 'virginica'] })
  readonly class_names!: (string | null)[];

  @ApiProperty({ example: '1' })
  readonly model_version!: string;

  @ApiProperty({ example: 0.52 })
  readonly latency_ms!: number;
}
