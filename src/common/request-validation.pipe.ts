import { ArgumentMetadata, Injectable, PipeTransform } from '@nestjs/common';
import { plainToInstance } from 'class-transformer';
import { validate } from 'class-validator';
import { InvalidInputError } from './domain.errors';
import { findJsonHazard, JsonLimits } from './json-guard';
import { wasScanned } from './json-scan';
import { flattenValidationErrors } from './validation-errors';

/**
 * Validates bodies against their DTO with class-validator: shape only, unknown fields rejected.
 * The values themselves are checked later against the model's own metadata, which the DTO cannot
 * know. Nest's ValidationPipe would do the same with more work per request (a copy back to a
 * plain object, a walk for binary values) that a JSON body never needs; the hot path is leaner
 * without it. Path and custom parameters pass untouched: routes parse their own.
 */
@Injectable()
export class RequestValidationPipe implements PipeTransform {
  constructor(private readonly limits: JsonLimits) {}

  async transform(value: unknown, metadata: ArgumentMetadata): Promise<unknown> {
    if (metadata.type !== 'body' || !metadata.metatype) return value;
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw new InvalidInputError('The body must be a JSON object', [
        { path: 'body', message: `got ${Array.isArray(value) ? 'an array' : typeof value}` },
      ]);
    }
    // Before class-transformer sees it: prototype keys and hostile depth never reach a recursive walk.
    // A body read from the wire was bounded by the byte scan already (json-scan.ts); only others are walked.
    const hazard = wasScanned(value) ? undefined : findJsonHazard(value, this.limits);
    if (hazard) throw new InvalidInputError('The request body is invalid', [hazard]);
    const errors = await validate(plainToInstance(metadata.metatype as new () => object, value), {
      whitelist: true,
      forbidNonWhitelisted: true,
      forbidUnknownValues: true,
      validationError: { target: false, value: false },
    });
    if (errors.length > 0) throw new InvalidInputError('The request body is invalid', flattenValidationErrors(errors));
    return value;
  }
}
