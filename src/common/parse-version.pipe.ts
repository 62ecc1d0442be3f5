import { Injectable, PipeTransform } from '@nestjs/common';
import { InvalidInputError } from './domain.errors';
import { VERSION, VERSION_LABEL } from './model-names';

/** A version path parameter as a number, in the manner of Nest's ParseIntPipe, refused with INVALID_INPUT. */
@Injectable()
export class ParseVersionPipe implements PipeTransform<string, number> {
  transform(raw: string): number {
    if (!VERSION.test(raw)) {
      throw new InvalidInputError('The version must be a positive integer', [
        { path: 'version', message: `got ${JSON.stringify(raw.slice(0, 40))}` },
      ]);
    }
    return Number(raw);
  }
}

/** A label path parameter (config.json version_labels), refused with INVALID_INPUT when it cannot be one. */
@Injectable()
export class ParseLabelPipe implements PipeTransform<string, string> {
  transform(raw: string): string {
    if (!VERSION_LABEL.test(raw)) {
      throw new InvalidInputError('The label must start with a letter or _, then letters, digits, _ . - (at most 64)', [
        { path: 'label', message: `got ${JSON.stringify(raw.slice(0, 40))}` },
      ]);
    }
    return raw;
  }
}

/** V2's version field: a version number, or a label that config.json version_labels gives one. */
@Injectable()
export class ParseVersionOrLabelPipe implements PipeTransform<string, number | string> {
  transform(raw: string): number | string {
    if (VERSION.test(raw)) return Number(raw);
    if (VERSION_LABEL.test(raw)) return raw;
    throw new InvalidInputError('The version must be a positive integer or a version label', [
      { path: 'version', message: `got ${JSON.stringify(raw.slice(0, 40))}` },
    ]);
  }
}
