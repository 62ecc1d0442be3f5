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
 * Rules whose verdict on a value depends on its kind alone (kindOf). A DTO whose every rule is one of
 * these gives the same verdict to every body with the same keys, in the same order, of the same kinds.
 */
const KIND_ONLY_RULES = new Set(['isOptional', 'isArrayOrObject', 'isObject', 'isArray', 'arrayNotEmpty']);

function kindOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return value.length === 0 ? 'empty array' : 'array';
  return typeof value;
}

/** A body's keys, in order, and their kinds. */
function shapeOf(value: object): string {
  let shape = '';
  for (const [key, field] of Object.entries(value)) shape += `${key}\u0000${kindOf(field)}\u0001`;
  return shape;
}

/** What the pipe knows of a DTO, from class-validator's metadata, once. */
interface DtoRules {
  /**
   * Whether class-transformer has work to do: only nested DTOs (`@ValidateNested` with `@Type`) need
   * their plain objects turned into instances before class-validator can see their rules.
   */
  readonly nested: boolean;
  /**
   * The shapes (shapeOf) of bodies found valid, when every rule is kind-only: a body of one of these
   * shapes is valid without running class-validator again. Only valid bodies are remembered, and those
   * have no key but the DTO's own (unknown keys are refused), so the set stays as small as the DTO.
   */
  readonly valid: Set<string> | undefined;
}

function rulesOf(metatype: Dto): DtoRules {
  const rules = getMetadataStorage().getTargetValidationMetadatas(metatype, '', true, false);
  const kindOnly = rules.every((m) => KIND_ONLY_RULES.has(m.name ?? m.type) && !m.each);
  return { nested: rules.some((m) => m.type === 'nestedValidation'), valid: kindOnly ? new Set() : undefined };
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
  private readonly rules = new Map<Dto, DtoRules>();
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
    let rules = this.rules.get(metatype);
    if (rules === undefined) this.rules.set(metatype, (rules = rulesOf(metatype)));
    const shape = rules.valid && shapeOf(value);
    if (shape !== undefined && rules.valid!.has(shape)) return value;
    const instance = rules.nested ? plainToInstance(metatype, value) : shallowInstance(metatype, value);
    const errors = await validate(instance, {
      whitelist: true,
      forbidNonWhitelisted: true,
      forbidUnknownValues: true,
      validationError: { target: false, value: false },
    });
    if (errors.length > 0) throw new InvalidInputError('The request body is invalid', flattenValidationErrors(errors));
    if (shape !== undefined) rules.valid!.add(shape);
    return value;
  }
}

/**
 * The request body, validated against the parameter's DTO by RequestValidationPipe. Bound to the body
 * alone rather than as a global pipe: Nest runs global pipes over every parameter of every route (the
 * model name, the request context), each through its own chain of promises.
 */
export const ValidBody = () => Body(RequestValidationPipe);
