import { ValidationError } from 'class-validator';
import { ErrorDetail } from './domain.errors';

/** Flattens class-validator's error tree into `{ path, message }` pairs, e.g. `instances[3]`. */
export function flattenValidationErrors(errors: readonly ValidationError[], prefix = ''): ErrorDetail[] {
  return errors.flatMap((e) => {
    const path = /^\d+$/.test(e.property)
      ? `${prefix}[${e.property}]`
      : prefix
        ? `${prefix}.${e.property}`
        : e.property;
    const own = Object.values(e.constraints ?? {}).map((m) => ({
      path,
      message: m === `property ${e.property} should not exist` ? 'unknown field' : m,
    }));
    return [...own, ...flattenValidationErrors(e.children ?? [], path)];
  });
}
