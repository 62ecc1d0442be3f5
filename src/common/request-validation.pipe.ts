import { ArgumentMetadata, Body, Inject, Injectable, PipeTransform } from '@nestjs/common';
import { plainToInstance } from 'class-transformer';
import { getMetadataStorage, validate } from 'class-validator';
import { InvalidInputError } from './domain.errors';
import { AppConfig } from '../config/app.config';
import { findJsonHazard, JsonLimits } from './json-guard';
import { wasScanned } from './json-scan';
import { flattenValidationErrors } from './validation-errors';

type Dto = new () => object;

/**
 * Whether class-transformer has work to do for a DTO: only nested DTOs (`@ValidateNested` with `@Type`)
 * need their plain objects turned into instances before class-validator can see their rules.
 */
function hasNestedDtos(metatype: Dto): boolean {
  return getMetadataStorage()
    .getTargetValidationMetadatas(metatype, '', true, false)
    .some((m) => m.type === 'nestedValidation');
}

/**
 * The body as an instance of its DTO, which is all class-validator needs to find the rules: a copy of
 * its own fields on the DTO's prototype. plainToInstance would copy every nested array and object too
 * (a 256-feature instance is 256 copies), only for validation to read the top-level fields.
 */
function shallowInstance(metatype: Dto, value: object): object {
  const instance = Object.create(metatype.prototype as object) as Record<string, unknown>;
  // Defined rather than assigned, so that a "__proto__" key (refused earlier) could never reach the prototype.
  for (const [key, field] of Object.entries(value)) {
    Object.defineProperty(instance, key, { value: field, enumerable: true, writable: true, configurable: true });
  }
  return instance;
}

/**
 * Validates bodies against their DTO with class-validator: shape only, unknown fields rejected.
 * The values themselves are checked later against the model's own metadata, which the DTO cannot
 * know. Nest's ValidationPipe would do the same with more work per request (a copy back to a
 * plain object, a walk for binary values) that a JSON body never needs; the hot path is leaner
 * without it. Path and custom parameters pass untouched: routes parse their own.
 */
@Injectable()
export class RequestValidationPipe implements PipeTransform {
  private readonly nested = new Map<Dto, boolean>();
  private readonly limits: JsonLimits;

  constructor(@Inject(AppConfig) config: Pick<AppConfig, 'MAX_ARRAY_LENGTH' | 'MAX_STRING_LENGTH'>) {
    this.limits = { maxArrayLength: config.MAX_ARRAY_LENGTH, maxStringLength: config.MAX_STRING_LENGTH };
  }

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
    const metatype = metadata.metatype as Dto;
    let nested = this.nested.get(metatype);
    if (nested === undefined) this.nested.set(metatype, (nested = hasNestedDtos(metatype)));
    const instance = nested ? plainToInstance(metatype, value) : shallowInstance(metatype, value);
    const errors = await validate(instance, {
      whitelist: true,
      forbidNonWhitelisted: true,
      forbidUnknownValues: true,
      validationError: { target: false, value: false },
    });
    if (errors.length > 0) throw new InvalidInputError('The request body is invalid', flattenValidationErrors(errors));
    return value;
  }
}

/**
 * The request body, validated against the parameter's DTO by RequestValidationPipe. Bound to the body
 * alone rather than as a global pipe: Nest runs global pipes over every parameter of every route (the
 * model name, the request context), each through its own chain of promises.
 */
export const ValidBody = () => Body(RequestValidationPipe);
