import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { ERROR_CODES, ErrorCode } from './domain.errors';

export class ErrorDetailDto {
  @ApiProperty({ example: 'instances[3].features', description: 'Where in the request the problem is' })
  readonly path!: string;

  @ApiProperty({ example: 'expected shape [4] (4 values), got shape [3]' })
  readonly message!: string;
}

/** The body of every error response. */
export class ErrorResponseDto {
  @ApiProperty({ example: 400 })
  readonly statusCode!: number;

  @ApiProperty({
    example: 'INVALID_INPUT',
    // An enum, so that generated clients type the code as the union of the codes the service has.
    enum: Object.keys(ERROR_CODES),
    enumName: 'ErrorCode',
    description: 'Stable machine-readable code (the README lists what each means)',
  })
  readonly error!: ErrorCode;

  @ApiProperty({ example: "The request does not match the model's inputs" })
  readonly message!: string;

  @ApiProperty({ type: [ErrorDetailDto] })
  readonly details!: ErrorDetailDto[];

  @ApiPropertyOptional({ example: '3f1c2a9e-8d0b-4b8e-9a57-1f0f6c2d7e11' })
  readonly requestId?: string;
}
