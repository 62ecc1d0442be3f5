import { applyDecorators } from '@nestjs/common';
import { ApiResponse } from '@nestjs/swagger';
import { ErrorResponseDto } from './error-response.dto';

const DESCRIPTIONS: Record<number, string> = {
  400: 'Invalid request: the body or a value does not match the model (details name each field)',
  404: 'Unknown model or version',
  413: 'Body larger than BODY_LIMIT',
  415: 'Body is not JSON',
  500: 'Internal fault (never includes a stack trace)',
  503: 'Model not ready (loading or failed); retry after the Retry-After header',
};

/** Documents the structured error responses a route can give. */
export function ApiErrors(...statuses: number[]) {
  return applyDecorators(
    ...statuses.map((status) => ApiResponse({ status, description: DESCRIPTIONS[status], type: ErrorResponseDto })),
  );
}

/** The errors every prediction route can give. */
export const ApiPredictErrors = () => ApiErrors(400, 404, 413, 415, 500, 503);
