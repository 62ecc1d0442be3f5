import { ValidatorConstraint, ValidatorConstraintInterface, ValidationArguments } from 'class-validator';
import { parseApiKeys } from './api-keys';

/** API_KEYS must parse; the message names the entry, never the key. */
@ValidatorConstraint({ name: 'apiKeys' })
export class ApiKeysSyntax implements ValidatorConstraintInterface {
  private problems: readonly string[] = [];

  validate(value: unknown): boolean {
    if (typeof value !== 'string') return false;
    this.problems = parseApiKeys(value, 'API_KEYS').problems;
    return this.problems.length === 0;
  }

  defaultMessage(): string {
    return this.problems.join('; ') || 'API_KEYS must be a comma-separated list of keys';
  }
}

/** AUTH_OPEN_PATHS: comma-separated paths starting with `/`, a trailing `*` for a prefix. */
@ValidatorConstraint({ name: 'openPaths' })
export class OpenPathsSyntax implements ValidatorConstraintInterface {
  validate(value: unknown): boolean {
    if (typeof value !== 'string') return false;
    return value
      .split(',')
      .map((p) => p.trim())
      .filter(Boolean)
      .every((p) => /^\/[^*?#\s]*\*?$/.test(p));
  }

  defaultMessage(args: ValidationArguments): string {
    return `${args.property} must be comma-separated paths starting with /, each exact or a prefix ending in *`;
  }
}
