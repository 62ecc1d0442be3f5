import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';

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
    description:
      'Stable machine-readable code: INVALID_INPUT, MALFORMED_JSON, UNSUPPORTED_MEDIA_TYPE, PAYLOAD_TOO_LARGE, ' +
      'ROUTE_NOT_FOUND, UNAUTHENTICATED, FORBIDDEN, RATE_LIMITED, HEADERS_TOO_LARGE, REQUEST_TIMEOUT, MODEL_NOT_FOUND, ' +
      'MODEL_NOT_READY, QUEUE_FULL, DEADLINE_EXCEEDED, INFERENCE_FAILED, INTERNAL',
  })
  readonly error!: string;

  @ApiProperty({ example: "The request does not match the model's inputs" })
  readonly message!: string;

  @ApiProperty({ type: [ErrorDetailDto] })
  readonly details!: ErrorDetailDto[];

  @ApiPropertyOptional({ example: '3f1c2a9e-8d0b-4b8e-9a57-1f0f6c2d7e11' })
  readonly requestId?: string;
}
