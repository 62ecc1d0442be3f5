import { InferenceFailedError } from '../common/domain.errors';
import { pack, Scalar, show } from './element-types';
import { instanceShape, ModelSignature, TensorData } from './model.types';
import {
  checkElement,
  EncodedRun,
  JsonTensor,
  nestedJson,
  NOT_THE_INPUTS,
  ParsedTensor,
  Problems,
  readTensor,
  shapeText,
} from './tensor.codec';
import { product } from './tensor-rows';

/**
 * Instances, the service's own form of input: one example at a time, as a feature array, an object
 * of named features, or `{ "inputs": { "<name>": <values> } }`, without the batch dimension. The v1
 * routes, the default model's routes and config.json's self-test samples all use this form; the
 * codec packs instances into runs and splits a run's outputs back into one JSON object per instance.
 */

/** One instance's outputs by output name, as JSON. */
export type InstanceOutputs = Record<string, JsonTensor>;

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

const join = (path: string, key: string) => (path ? `${path}.${key}` : key);

function readFeatures(
  features: unknown,
  signature: ModelSignature,
  path: string,
  problems: Problems,
): Map<string, ParsedTensor> | undefined {
  if (signature.inputs.length !== 1) {
    problems.add(
      path,
      `this model has several inputs (${signature.inputs.map((i) => i.name).join(', ')}); send them as "inputs": { "<name>": <values> }`,
    );
    return undefined;
  }
  const spec = signature.inputs[0];
  const shape = instanceShape(spec, signature);
  if (isPlainObject(features)) {
    const names = signature.features;
    if (!names) {
      problems.add(path, 'this model has no feature names configured; send features as an array of values');
      return undefined;
    }
    const unknown = Object.keys(features).filter((k) => !names.includes(k));
    const missing = names.filter((n) => !Object.prototype.hasOwnProperty.call(features, n));
    for (const k of unknown) problems.add(join(path, k), `unknown feature; expected ${names.join(', ')}`);
    for (const n of missing) problems.add(join(path, n), 'missing feature');
    if (unknown.length || missing.length) return undefined;
    const values: Scalar[] = [];
    for (const n of names) {
      const value = checkElement(features[n], spec.type);
      if (typeof value === 'object') problems.add(join(path, n), value.error);
      else values.push(value);
    }
    if (values.length < names.length) return undefined;
    return new Map([[spec.name, { shape: shape.includes(-1) ? [names.length] : [...shape], values }]]);
  }
  if (!Array.isArray(features)) {
    problems.add(
      path,
      `features must be an array of values${signature.features ? ' or an object of named features' : ''}, got ${show(features)}`,
    );
    return undefined;
  }
  const parsed = readTensor(features, shape, spec.type, path, problems);
  return parsed && new Map([[spec.name, parsed]]);
}

function readInputs(
  inputs: unknown,
  signature: ModelSignature,
  path: string,
  problems: Problems,
): Map<string, ParsedTensor> | undefined {
  if (!isPlainObject(inputs)) {
    problems.add(
      path,
      `inputs must be an object keyed by input name (${signature.inputs.map((i) => i.name).join(', ')}), got ${show(inputs)}`,
    );
    return undefined;
  }
  const names = signature.inputs.map((i) => i.name);
  for (const key of Object.keys(inputs)) {
    if (!names.includes(key))
      problems.add(join(path, key), `unknown input; this model's inputs are ${names.join(', ')}`);
  }
  const parsed = new Map<string, ParsedTensor>();
  for (const spec of signature.inputs) {
    if (!Object.prototype.hasOwnProperty.call(inputs, spec.name)) {
      problems.add(
        join(path, spec.name),
        `missing input (${spec.type}, shape ${shapeText(instanceShape(spec, signature))})`,
      );
      continue;
    }
    const tensor = readTensor(
      inputs[spec.name],
      instanceShape(spec, signature),
      spec.type,
      join(path, spec.name),
      problems,
    );
    if (tensor) parsed.set(spec.name, tensor);
  }
  return problems.any ? undefined : parsed;
}

/**
 * Reads one instance in any of its forms: a feature array, `{ features: [...] | {...} }`,
 * `{ inputs: {...} }`, or (in batches) an object of named features.
 */
function readInstance(
  instance: unknown,
  signature: ModelSignature,
  path: string,
  problems: Problems,
): Map<string, ParsedTensor> | undefined {
  if (Array.isArray(instance)) return readFeatures(instance, signature, path, problems);
  if (!isPlainObject(instance)) {
    problems.add(
      path,
      `expected an array of features, an object of named features, or { "inputs": {...} }, got ${show(instance)}`,
    );
    return undefined;
  }
  const hasFeatures = instance.features !== undefined && Object.prototype.hasOwnProperty.call(instance, 'features');
  const hasInputs = instance.inputs !== undefined && Object.prototype.hasOwnProperty.call(instance, 'inputs');
  if (hasFeatures && hasInputs) {
    problems.add(path, 'send either "features" or "inputs", not both');
    return undefined;
  }
  if (hasFeatures || hasInputs) {
    const extra = Object.keys(instance).filter((k) => k !== 'features' && k !== 'inputs');
    for (const k of extra) problems.add(join(path, k), 'unknown field');
    if (extra.length) return undefined;
    return hasFeatures
      ? readFeatures(instance.features, signature, join(path, 'features'), problems)
      : readInputs(instance.inputs, signature, join(path, 'inputs'), problems);
  }
  if (Object.keys(instance).length === 0) {
    problems.add(path, 'empty instance: send "features" or "inputs"');
    return undefined;
  }
  return readFeatures(instance, signature, path, problems);
}

/**
 * Validates instances against the signature and packs them into runs: one run for all instances
 * when the model has a batch dimension, one run per instance otherwise. Throws InvalidInputError
 * listing every problem found (up to a bound).
 */
export function encodeInstances(
  signature: ModelSignature,
  instances: readonly unknown[],
  pathOf: (index: number) => string,
): EncodedRun[] {
  const problems = new Problems();
  const parsed: Map<string, ParsedTensor>[] = [];
  for (let i = 0; i < instances.length && !problems.full; i++) {
    const one = readInstance(instances[i], signature, pathOf(i), problems);
    if (one) parsed.push(one);
  }
  problems.throwIfAny(NOT_THE_INPUTS);

  if (!signature.batchable) {
    return parsed.map((p) => ({
      count: 1,
      feeds: Object.fromEntries(
        signature.inputs.map((s) => {
          const t = p.get(s.name)!;
          return [s.name, { type: s.type, dims: t.shape, data: pack(s.type, t.values) }];
        }),
      ),
    }));
  }

  const feeds: Record<string, TensorData> = {};
  for (const spec of signature.inputs) {
    const first = parsed[0].get(spec.name)!.shape;
    const sameShape = (shape: readonly number[]) =>
      shape.length === first.length && shape.every((d, i) => d === first[i]);
    // One instance's values are packed as they are; several are gathered first.
    let values = parsed[0].get(spec.name)!.values;
    if (parsed.length > 1) {
      values = [];
      for (let i = 0; i < parsed.length; i++) {
        const t = parsed[i].get(spec.name)!;
        if (!sameShape(t.shape)) {
          problems.add(
            `${pathOf(i)}`,
            `input '${spec.name}' has shape ${shapeText(t.shape)} but the first instance's is ${shapeText(first)}; instances in one batch must share a shape`,
          );
        }
        for (const v of t.values) values.push(v);
      }
    }
    feeds[spec.name] = { type: spec.type, dims: [parsed.length, ...first], data: pack(spec.type, values) };
  }
  problems.throwIfAny('The instances of the batch do not share one shape');
  return [{ feeds, count: parsed.length }];
}

/** Splits a run's outputs back into one JSON object per instance, in order. */
export function decodeOutputs(
  signature: ModelSignature,
  outputs: Record<string, TensorData>,
  count: number,
): InstanceOutputs[] {
  const result: InstanceOutputs[] = Array.from({ length: count }, () => ({}));
  for (const spec of signature.outputs) {
    const tensor = outputs[spec.name];
    if (!tensor) continue;
    if (!signature.batchable) {
      result[0][spec.name] = nestedJson(tensor.data, tensor.type, tensor.dims);
      continue;
    }
    if (tensor.dims[0] !== count) {
      throw new InferenceFailedError(`output '${spec.name}' has ${tensor.dims[0]} rows for ${count} instances`);
    }
    const rowDims = tensor.dims.slice(1);
    const stride = product(rowDims);
    for (let i = 0; i < count; i++) result[i][spec.name] = nestedJson(tensor.data, tensor.type, rowDims, i * stride);
  }
  return result;
}
