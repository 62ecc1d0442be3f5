import { ArgumentMetadata, Injectable, ValidationPipe } from '@nestjs/common';
import { InvalidInputError } from './domain.errors';
import { findJsonHazard } from './json-guard';
import { flattenValidationErrors } from './validation-errors';

/**
 * Validates bodies against their DTO: shape only, unknown fields rejected. The values themselves
 * are checked later against the model's own metadata, which the DTO cannot know.
 */
@Injectable()
export class RequestValidationPipe extends ValidationPipe {
  constructor() {
    super({
      whitelist: true,
      forbidNonWhitelisted: true,
      transform: false,
      exceptionFactory: (errors) => new InvalidInputError('The request body is invalid', flattenValidationErrors(errors)),
    });
  }

  override async transform(value: unknown, metadata: ArgumentMetadata): Promise<unknown> {
    if (metadata.type === 'body' && (typeof value !== 'object' || value === null || Array.isArray(value))) {
      throw new InvalidInputError('The body must be a JSON object', [{ path: 'body', message: `got ${Array.isArray(value) ? 'an array' : typeof value}` }]);
    }
    if (metadata.type === 'body') {
      const hazard = findJsonHazard(value);
      if (hazard) throw new InvalidInputError('The request body is invalid', [hazard]);
    }
    return super.transform(value, metadata);
  }
}
