import { ArgumentMetadata } from '@nestjs/common';
import { getMetadataStorage } from 'class-validator';
import { ValidationMetadata } from 'class-validator/types/metadata/ValidationMetadata';
import * as repositoryDtos from '../inference-protocol/dto/repository.dto';
import * as v2Dtos from '../inference-protocol/dto/v2.dto';
import * as predictDtos from '../prediction/dto/predict-request.dto';
import { BatchPredictRequestDto, PredictRequestDto } from '../prediction/dto/predict-request.dto';
import { InvalidInputError } from './domain.errors';
import { RequestValidationPipe } from './request-validation.pipe';

const pipe = new RequestValidationPipe({ maxArrayLength: 1000, maxStringLength: 1000 });
const body = (metatype: new () => object): ArgumentMetadata => ({ type: 'body', metatype });

function rejection(value: unknown, metatype: new () => object = PredictRequestDto): InvalidInputError {
  try {
    pipe.transform(value, body(metatype));
  } catch (err) {
    if (err instanceof InvalidInputError) return err;
    throw err;
  }
  throw new Error(`expected ${JSON.stringify(value)} to be rejected`);
}

describe('RequestValidationPipe', () => {
  it('answers a valid body synchronously with the body itself', () => {
    const value = { features: [5.1, 3.5, 1.4, 0.2] };
    const out = pipe.transform(value, body(PredictRequestDto));
    expect(out).toBe(value);
    expect(out).not.toBeInstanceOf(Promise);
    const batch = { instances: [[1, 2, 3, 4]] };
    expect(pipe.transform(batch, body(BatchPredictRequestDto))).toBe(batch);
  });

  it('rejects unknown fields, wrong types and bodies that are not objects, naming the field', () => {
    expect(rejection({ features: [1, 2], extra: 1 }).details.map((d) => d.path)).toContain('extra');
    expect(rejection({ inputs: 'x' }).details.map((d) => d.path)).toContain('inputs');
    expect(rejection({ instances: [] }, BatchPredictRequestDto).details.map((d) => d.path)).toContain('instances');
    expect(rejection([1, 2]).details).toEqual([{ path: 'body', message: 'got an array' }]);
  });

  it('rejects prototype keys before class-transformer sees them', () => {
    expect(rejection(JSON.parse('{"features":[1],"__proto__":{"x":1}}')).message).toBe('The request body is invalid');
  });

  it('passes path parameters and bodies without a DTO through untouched', () => {
    expect(pipe.transform('iris', { type: 'param', metatype: String, data: 'model' })).toBe('iris');
    const raw = { anything: true };
    expect(pipe.transform(raw, { type: 'body' })).toBe(raw);
  });

  it('has no async constraint on any request DTO to skip (validateSync would)', () => {
    const storage = getMetadataStorage() as unknown as { validationMetadatas: Map<unknown, ValidationMetadata[]> };
    const classes = [...Object.values(predictDtos), ...Object.values(v2Dtos), ...Object.values(repositoryDtos)].filter(
      (x): x is new () => object => typeof x === 'function',
    );
    const metadatas = classes.flatMap((target) => storage.validationMetadatas.get(target) ?? []);
    expect(metadatas.length).toBeGreaterThan(0);
    const constraints = metadatas
      .filter((m) => m.constraintCls)
      .flatMap((m) => getMetadataStorage().getTargetValidatorConstraints(m.constraintCls));
    expect(constraints.length).toBeGreaterThan(0);
    expect(constraints.filter((c) => c.async).map((c) => c.name)).toEqual([]);
  });
});
