import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { ArrayNotEmpty, IsArray, IsObject, IsOptional, ValidateBy } from 'class-validator';

// Titles name the oneOf alternatives in ReDoc and in generated types, which otherwise read "object | object".
const FEATURES_SCHEMA = {
  oneOf: [
    {
      title: 'FeatureArray',
      type: 'array',
      items: { type: 'number' },
      description: "Feature values in the model's order",
    },
    {
      title: 'NamedFeatures',
      type: 'object',
      additionalProperties: { type: 'number' },
      description: 'Feature values by name (models with feature names configured)',
    },
  ],
};

const INPUTS_SCHEMA = {
  type: 'object',
  description:
    "One tensor per model input, by input name: this instance's nested array (without the batch dimension " +
    'when the model has a dynamic first dimension, the whole tensor otherwise). int64 values beyond 2^53 may be sent as decimal strings.',
  additionalProperties: {},
} as const;

const IsArrayOrObject = () =>
  ValidateBy({
    name: 'isArrayOrObject',
    validator: {
      validate: (v: unknown) => typeof v === 'object' && v !== null,
      defaultMessage: () => 'features must be an array of values or an object of named values',
    },
  });

/** One instance: `features` (array or named) or `inputs` (tensors by input name). */
export class PredictRequestDto {
  @ApiPropertyOptional({ ...FEATURES_SCHEMA, example: [5.1, 3.5, 1.4, 0.2] })
  @IsOptional()
  @IsArrayOrObject()
  readonly features?: number[] | Record<string, number>;

  @ApiPropertyOptional(INPUTS_SCHEMA)
  @IsOptional()
  @IsObject({ message: 'inputs must be an object keyed by input name' })
  readonly inputs?: Record<string, unknown>;
}

export class BatchPredictRequestDto {
  @ApiProperty({
    description:
      'Instances, each a feature array, an object of named features, or { "inputs": {...} }. ' +
      'At most MAX_BATCH_SIZE (default 1024). All instances run together in one call where the model allows.',
    type: 'array',
    items: {
      oneOf: [
        { title: 'FeatureArray', type: 'array', items: { type: 'number' } },
        { title: 'NamedFeatures', type: 'object', additionalProperties: { type: 'number' } },
        { title: 'TensorInputs', type: 'object', properties: { inputs: INPUTS_SCHEMA }, required: ['inputs'] },
      ],
    },
    example: [[5.1, 3.5, 1.4, 0.2], { sepal_length: 6.7, sepal_width: 3.0, petal_length: 5.2, petal_width: 2.3 }],
  })
  @IsArray({ message: 'instances must be an array' })
  @ArrayNotEmpty({ message: 'instances must not be empty' })
  readonly instances!: unknown[];
}
