import { applyDecorators } from '@nestjs/common';
import { ApiResponse } from '@nestjs/swagger';
import { ERROR_CODES, ErrorCode } from './domain.errors';
import { ErrorResponseDto } from './error-response.dto';
import { HTTP_STATUS } from './http-exception.filter';

/** What an error status means, from the codes that answer with it (HTTP_ERROR stands for no status of its own). */
function description(status: number): string {
  const codes = (Object.keys(HTTP_STATUS) as ErrorCode[]).filter(
    (c) => HTTP_STATUS[c] === status && c !== 'HTTP_ERROR',
  );
  return codes.map((c) => `${c}: ${ERROR_CODES[c]}`).join('; ');
}

/** Documents the structured error responses a route can give. */
export function ApiErrors(...statuses: number[]) {
  return applyDecorators(
    ...statuses.map((status) => ApiResponse({ status, description: description(status), type: ErrorResponseDto })),
  );
}

/** The errors every prediction route can give. */
export const ApiPredictErrors = () => ApiErrors(400, 404, 413, 415, 500, 503, 504);
