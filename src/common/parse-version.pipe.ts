import { Injectable, PipeTransform } from '@nestjs/common';
import { InvalidInputError } from './domain.errors';
import { VERSION } from './model-names';

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
