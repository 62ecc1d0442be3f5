import { ArgumentMetadata } from '@nestjs/common';
import { plainToInstance } from 'class-transformer';
import { validate } from 'class-validator';
import * as fc from 'fast-check';
import { V2InferRequestDto } from '../inference-protocol/dto/v2.dto';
import { BatchPredictRequestDto, PredictRequestDto } from '../prediction/dto/predict-request.dto';
import { InvalidInputError } from './domain.errors';
import { findJsonHazard } from './json-guard';
import { RequestValidationPipe } from './request-validation.pipe';
import { flattenValidationErrors } from './validation-errors';

const pipe = new RequestValidationPipe({ MAX_ARRAY_LENGTH: 1000, MAX_STRING_LENGTH: 1000 });
const body = (metatype: new () => object): ArgumentMetadata => ({ type: 'body', metatype });

async function rejection(value: unknown, metatype: new () => object = PredictRequestDto): Promise<InvalidInputError> {
  try {
    await pipe.transform(value, body(metatype));
  } catch (err) {
    if (err instanceof InvalidInputError) return err;
    throw err;
  }
  throw new Error(`expected ${JSON.stringify(value)} to be rejected`);
}

describe('RequestValidationPipe', () => {
  it('answers a valid body with the body itself', async () => {
    const value = { features: [5.1, 3.5, 1.4, 0.2] };
    expect(await pipe.transform(value, body(PredictRequestDto))).toBe(value);
    const batch = { instances: [[1, 2, 3, 4]] };
    expect(await pipe.transform(batch, body(BatchPredictRequestDto))).toBe(batch);
  });

  it('rejects unknown fields, wrong types and bodies that are not objects, naming the field', async () => {
    expect((await rejection({ features: [1, 2], extra: 1 })).details.map((d) => d.path)).toContain('extra');
    expect((await rejection({ inputs: 'x' })).details.map((d) => d.path)).toContain('inputs');
    expect((await rejection({ instances: [] }, BatchPredictRequestDto)).details.map((d) => d.path)).toContain(
      'instances',
    );
    expect((await rejection([1, 2])).details).toEqual([{ path: 'body', message: 'got an array' }]);
  });

  it('judges each body afresh where a body of its shape was valid but its own is not', async () => {
    const batch = { instances: [[1, 2, 3, 4]] };
    expect(await pipe.transform(batch, body(BatchPredictRequestDto))).toBe(batch);
    expect((await rejection({ instances: [] }, BatchPredictRequestDto)).details.map((d) => d.path)).toEqual([
      'instances',
    ]);
    await pipe.transform({ features: [1] }, body(PredictRequestDto));
    expect((await rejection({ features: 'x' })).details.map((d) => d.path)).toEqual(['features']);
    expect((await rejection({ features: [1], inputs: [1] })).details.map((d) => d.path)).toEqual(['inputs']);
  });

  it('rejects prototype keys before class-transformer sees them', async () => {
    expect((await rejection(JSON.parse('{"features":[1],"__proto__":{"x":1}}'))).message).toBe(
      'The request body is invalid',
    );
  });

  it('passes path parameters and bodies without a DTO through untouched', async () => {
    expect(await pipe.transform('iris', { type: 'param', metatype: String, data: 'model' })).toBe('iris');
    const raw = { anything: true };
    expect(await pipe.transform(raw, { type: 'body' })).toBe(raw);
  });

  it('finds exactly the errors class-transformer and class-validator find, for any body of any DTO', async () => {
    const OPTIONS = {
      whitelist: true,
      forbidNonWhitelisted: true,
      forbidUnknownValues: true,
      validationError: { target: false, value: false },
    };
    // What validating a full class-transformer instance answers: the reference the pipe's shortcut must match.
    const reference = async (metatype: new () => object, value: object) =>
      flattenValidationErrors(await validate(plainToInstance(metatype, value), OPTIONS));
    const outcome = async (metatype: new () => object, value: object) => {
      try {
        await pipe.transform(value, body(metatype));
        return [];
      } catch (err) {
        return (err as InvalidInputError).details;
      }
    };
    const field = fc.oneof(
      fc.array(fc.double()),
      fc.dictionary(fc.string({ maxLength: 4 }), fc.double(), { maxKeys: 3 }),
      fc.array(fc.oneof(fc.array(fc.double()), fc.object({ maxDepth: 2 })), { maxLength: 3 }),
      fc.string(),
      fc.integer(),
      fc.constant(null),
      fc.object({ maxDepth: 2 }),
    );
    const keys = ['features', 'inputs', 'instances', 'id', 'parameters', 'outputs', 'extra'];
    const bodies = fc.dictionary(fc.constantFrom(...keys), field, { maxKeys: 4 });
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(PredictRequestDto, BatchPredictRequestDto, V2InferRequestDto),
        bodies,
        async (dto, value) => {
          // Prototype keys and hostile depth are refused before any DTO is looked at (their own test, above).
          fc.pre(findJsonHazard(value, { maxArrayLength: 1000, maxStringLength: 1000 }) === undefined);
          expect(await outcome(dto, value)).toEqual(await reference(dto, value));
        },
      ),
      { numRuns: 400 },
    );
  });
});
