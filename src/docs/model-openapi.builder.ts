import type {
  OpenAPIObject,
  OperationObject,
  PathItemObject,
  ReferenceObject,
  SchemaObject,
  TagObject,
} from '@nestjs/swagger';
import { elementType, ElementType } from '../models/element-types';
import { instanceShape, ModelSignature } from '../models/model.types';

/** What the document needs to know of a model whose default version is READY. */
export interface TypedModel {
  readonly name: string;
  readonly version: number;
  readonly description?: string;
  readonly signature: ModelSignature;
  /** config.json self-test samples: real inputs, so the documented examples give real answers. */
  readonly samples?: readonly { readonly features?: unknown; readonly inputs?: Record<string, unknown> }[];
  /** config.json traffic: then the unversioned routes are answered by the versions it weighs, not the default alone. */
  readonly traffic?: Readonly<Record<string, number>>;
}

type Schema = SchemaObject | ReferenceObject;
type Sample = NonNullable<TypedModel['samples']>[number];

/** The generic routes each model's typed routes are a concrete copy of. */
export const GENERIC_PREDICT = '/v1/models/{model}/predict';
export const GENERIC_BATCH = '/v1/models/{model}/predict/batch';
export const GENERIC_INFER = '/v2/models/{model}/infer';

interface GenericOperations {
  readonly predict: OperationObject;
  readonly batch: OperationObject;
  readonly infer: OperationObject;
}

const ref = (name: string): ReferenceObject => ({ $ref: `#/components/schemas/${name}` });

/** One tensor element as JSON, as the tensor codec reads and writes it. */
export const elementSchema = (type: ElementType): SchemaObject =>
  structuredClone(elementType(type).schema) as SchemaObject;

/** Nested arrays of the given shape (-1: any length); fixed lengths become minItems = maxItems, so SDKs get tuples. */
export function tensorSchema(shape: readonly number[], element: SchemaObject): SchemaObject {
  return shape.reduceRight<SchemaObject>(
    (items, dim) => ({ type: 'array', items, ...(dim >= 0 ? { minItems: dim, maxItems: dim } : {}) }),
    element,
  );
}

function zeros(shape: readonly number[], type: ElementType): unknown {
  const { zero } = elementType(type);
  return shape.reduceRight<unknown>(
    (inner, dim) => Array.from({ length: dim === -1 ? 1 : dim }, () => structuredClone(inner)),
    zero,
  );
}

/**
 * Schema-name prefix for a model (`iris` → `Iris`, `iris_versions` → `IrisVersions`), unique among
 * those already taken, since different folder names can spell the same identifier.
 */
export function schemaPrefix(name: string, taken: ReadonlySet<string>): string {
  const words = name.split(/[^A-Za-z0-9]+/).filter(Boolean);
  let base = words.map((w) => w[0].toUpperCase() + w.slice(1)).join('') || 'Model';
  if (/^\d/.test(base)) base = `Model${base}`;
  let prefix = base;
  for (let i = 2; taken.has(prefix); i++) prefix = `${base}${i}`;
  return prefix;
}

/** The body of one instance: named features where the model has them, else a feature array, else inputs. */
function exampleInstance(model: TypedModel, sample: Sample | undefined): Record<string, unknown> {
  const { signature } = model;
  const names = signature.features;
  if (sample?.inputs) return { inputs: sample.inputs };
  const features = sample?.features;
  if (Array.isArray(features) && names && features.length === names.length) {
    return { features: Object.fromEntries(names.map((n, i) => [n, features[i] as unknown])) };
  }
  if (features !== undefined) return { features };
  if (signature.inputs.length === 1) {
    const spec = signature.inputs[0];
    const values = zeros(instanceShape(spec, signature), spec.type);
    if (names && Array.isArray(values) && values.length === names.length)
      return { features: Object.fromEntries(names.map((n) => [n, values[0] as unknown])) };
    return { features: values };
  }
  return {
    inputs: Object.fromEntries(signature.inputs.map((s) => [s.name, zeros(instanceShape(s, signature), s.type)])),
  };
}

/** The dimensions of a nested array, following its first elements. */
function nestedShape(value: unknown): number[] {
  const dims: number[] = [];
  for (let v = value; Array.isArray(v); v = v[0]) dims.push(v.length);
  return dims;
}

/** One instance, the v1 example, as an Open Inference Protocol request: whole tensors, flat data. */
function v2Example(model: TypedModel, instance: Record<string, unknown>): Record<string, unknown> {
  const { signature } = model;
  const values: Record<string, unknown> = {};
  if ('inputs' in instance) Object.assign(values, instance.inputs);
  else {
    const features = instance.features;
    const names = signature.features;
    values[signature.inputs[0].name] =
      Array.isArray(features) || !names ? features : names.map((n) => (features as Record<string, unknown>)[n]);
  }
  return {
    inputs: signature.inputs.map((spec) => {
      const value = values[spec.name];
      const own = instanceShape(spec, signature);
      const dims = own.every((d) => d >= 0) ? [...own] : nestedShape(value);
      return {
        name: spec.name,
        shape: signature.batchable ? [1, ...dims] : dims,
        datatype: elementType(spec.type).v2,
        data: Array.isArray(value) ? value.flat(Infinity) : [value],
      };
    }),
  };
}

export interface ModelApi {
  readonly paths: Record<string, PathItemObject>;
  readonly schemas: Record<string, SchemaObject>;
  readonly tag: TagObject;
}

/**
 * The typed view of one model's prediction routes: concrete paths (`/v1/models/iris/predict`,
 * operationId `predictIris`) beside the generic templated ones, with request and response schemas
 * built from the model's own signature. They describe a subset of what the generic routes accept,
 * so every body a typed client sends is one the server's validation already takes.
 */
export function modelApi(model: TypedModel, prefix: string, generic: GenericOperations): ModelApi {
  const { signature, name } = model;
  const s = (suffix: string) => `${prefix}${suffix}`;
  const schemas: Record<string, SchemaObject> = {};

  const featureForms: Schema[] = [];
  if (signature.inputs.length === 1) {
    const spec = signature.inputs[0];
    schemas[s('FeatureArray')] = {
      ...tensorSchema(instanceShape(spec, signature), elementSchema(spec.type)),
      description: `Input '${spec.name}' (${spec.type}) of one instance, as nested arrays`,
    };
    featureForms.push(ref(s('FeatureArray')));
    if (signature.features) {
      schemas[s('Features')] = {
        type: 'object',
        description: `The features of one ${name} instance, by name`,
        properties: Object.fromEntries(signature.features.map((f) => [f, elementSchema(spec.type)])),
        required: [...signature.features],
        additionalProperties: false,
      };
      featureForms.push(ref(s('Features')));
    }
  }
  schemas[s('Inputs')] = {
    type: 'object',
    description: `One ${name} instance as tensors by input name${signature.batchable ? ', without the batch dimension' : ''}`,
    properties: Object.fromEntries(
      signature.inputs.map((i) => [i.name, tensorSchema(instanceShape(i, signature), elementSchema(i.type))]),
    ),
    required: signature.inputs.map((i) => i.name),
    additionalProperties: false,
  };

  // Titles name the oneOf alternatives in ReDoc and in generated types, which otherwise read "object | object".
  const inputsForm: SchemaObject = {
    title: `${prefix}Tensors`,
    type: 'object',
    properties: { inputs: ref(s('Inputs')) },
    required: ['inputs'],
    additionalProperties: false,
  };
  const featuresForm: SchemaObject | undefined = featureForms.length
    ? {
        title: `${prefix}ByFeatures`,
        type: 'object',
        properties: { features: featureForms.length === 1 ? featureForms[0] : { oneOf: featureForms } },
        required: ['features'],
        additionalProperties: false,
      }
    : undefined;
  schemas[s('PredictRequest')] = featuresForm ? { oneOf: [featuresForm, inputsForm] } : inputsForm;
  schemas[s('Instance')] = {
    oneOf: [...featureForms, ref(s('PredictRequest'))],
    description: `One ${name} instance in any of its forms`,
  };
  schemas[s('BatchPredictRequest')] = {
    type: 'object',
    properties: {
      instances: {
        type: 'array',
        items: ref(s('Instance')),
        minItems: 1,
        description: 'At most MAX_BATCH_SIZE instances',
      },
    },
    required: ['instances'],
    additionalProperties: false,
  };

  schemas[s('Outputs')] = {
    type: 'object',
    description: `Every output of ${name} for one instance, by name`,
    properties: Object.fromEntries(
      signature.outputs.map((o) => [o.name, tensorSchema(instanceShape(o, signature), elementSchema(o.type))]),
    ),
    required: signature.outputs.map((o) => o.name),
    additionalProperties: false,
  };
  const probabilities = signature.outputs.find((o) => o.name === signature.probabilityOutput);
  const classes = probabilities?.shape.at(-1);
  const instanceFields: Record<string, Schema> = {
    prediction: { type: 'integer', nullable: true, description: 'Class index (classifiers only)' },
    label: signature.labels
      ? {
          type: 'string',
          enum: [...signature.labels, null],
          nullable: true,
          description: 'Class name (classifiers only)',
        }
      : { type: 'string', nullable: true, description: 'Class name (classifiers with labels only)' },
    probability: { type: 'number', nullable: true, description: 'Probability of the predicted class' },
    probabilities: {
      type: 'array',
      items: { type: 'number' },
      ...(classes !== undefined && classes >= 0 ? { minItems: classes, maxItems: classes } : {}),
      nullable: true,
      description: 'Probability per class, by class index',
    },
    outputs: ref(s('Outputs')),
  };
  const instanceRequired = Object.keys(instanceFields);
  schemas[s('InstancePrediction')] = { type: 'object', properties: instanceFields, required: instanceRequired };
  const modelField: SchemaObject = { type: 'string', enum: [name] };
  const versionField: SchemaObject = { type: 'integer', example: model.version };
  const latency: SchemaObject = { type: 'number', description: 'Time spent in the service, ms' };
  schemas[s('Prediction')] = {
    type: 'object',
    properties: { model: modelField, version: versionField, ...instanceFields, latency_ms: latency },
    required: ['model', 'version', ...instanceRequired, 'latency_ms'],
  };
  schemas[s('BatchPrediction')] = {
    type: 'object',
    properties: {
      model: modelField,
      version: versionField,
      predictions: { type: 'array', items: ref(s('InstancePrediction')) },
      latency_ms: latency,
    },
    required: ['model', 'version', 'predictions', 'latency_ms'],
  };

  // Open Inference Protocol: whole tensors, each input by name with its datatype and rank.
  const v2Inputs: SchemaObject[] = signature.inputs.map((spec) => ({
    title: `${prefix}Input_${spec.name}`,
    type: 'object',
    properties: {
      name: { type: 'string', enum: [spec.name] },
      shape: {
        type: 'array',
        items: { type: 'integer', minimum: 0 },
        minItems: spec.shape.length,
        maxItems: spec.shape.length,
        description: `[${spec.shape.join(', ')}]; -1 is any size`,
      },
      datatype: { type: 'string', enum: [elementType(spec.type).v2] },
      data: { type: 'array', items: elementSchema(spec.type), description: 'Row-major values (flat)' },
      parameters: { type: 'object', additionalProperties: true },
    },
    required: ['name', 'shape', 'datatype', 'data'],
    additionalProperties: false,
  }));
  const outputNames = signature.outputs.map((o) => o.name);
  schemas[s('V2InferRequest')] = {
    type: 'object',
    description: `Open Inference Protocol request for ${name}: every input once, by name`,
    properties: {
      id: { type: 'string' },
      parameters: { type: 'object', additionalProperties: true },
      inputs: {
        type: 'array',
        items: v2Inputs.length === 1 ? v2Inputs[0] : { oneOf: v2Inputs },
        minItems: v2Inputs.length,
        maxItems: v2Inputs.length,
      },
      outputs: {
        type: 'array',
        description: 'Outputs to return (all when absent)',
        items: {
          type: 'object',
          properties: {
            name: { type: 'string', enum: outputNames },
            parameters: {
              type: 'object',
              properties: {
                classification: { type: 'integer', minimum: 1 },
                binary_data: { type: 'boolean', enum: [false] },
              },
              additionalProperties: true,
            },
          },
          required: ['name'],
          additionalProperties: false,
        },
      },
    },
    required: ['inputs'],
    additionalProperties: false,
  };

  const samples: (Sample | undefined)[] = model.samples?.length ? [...model.samples] : [undefined];
  const single = exampleInstance(model, samples[0]);
  const batch = {
    instances: samples.slice(0, 2).map((sample) => {
      const instance = exampleInstance(model, sample);
      return 'features' in instance ? instance.features : instance;
    }),
  };
  const tag = `model ${name}`;
  const about = [
    signature.features
      ? `Features: ${signature.features.join(', ')}.`
      : `Inputs: ${signature.inputs.map((i) => `${i.name} (${i.type} [${i.shape.join(', ')}])`).join(', ')}.`,
    signature.labels ? `Labels: ${signature.labels.join(', ')}.` : '',
  ]
    .filter(Boolean)
    .join(' ');
  const weights = Object.entries(model.traffic ?? {}).filter(([, w]) => w > 0);
  const total = weights.reduce((sum, [, w]) => sum + w, 0);
  const answeredBy = weights.length
    ? `Answered by version ${weights.map(([v, w]) => `${v} (${Math.round((w / total) * 100)}%)`).join(', ')}, split by config.json traffic (sticky per X-Routing-Key); X-Model-Version says which`
    : `Answered by version ${model.version}, the default`;
  const operation = (
    base: OperationObject,
    operationId: string,
    summary: string,
    request: string,
    response: string | undefined,
    example: unknown,
  ): OperationObject =>
    ({
      operationId,
      summary,
      description: `${about} ${answeredBy}; the same as ${base.operationId} with model '${name}'.`,
      tags: [tag],
      // The generic route's other parameters (none but the path's model today), security and error responses.
      parameters: (base.parameters ?? []).filter((p) => !('in' in p && p.in === 'path')),
      ...(base.security ? { security: base.security } : {}),
      // The generic route's other media types (the V2 binary form) keep their own, raw, schema.
      requestBody: {
        required: true,
        content: {
          'application/json': { schema: ref(request), example },
          ...Object.fromEntries(
            Object.entries((base.requestBody as { content?: object } | undefined)?.content ?? {}).filter(
              ([type]) => type !== 'application/json',
            ),
          ),
        },
      },
      // A V2 answer keeps the generic schema: requested outputs and the classification extension change its tensors.
      // Its 200 keeps the generic route's response headers (X-Cache) with the typed body.
      responses: response
        ? {
            ...base.responses,
            '200': {
              ...(base.responses['200'] as object),
              description: 'The prediction',
              content: { 'application/json': { schema: ref(response) } },
            },
          }
        : base.responses,
      'x-model': name,
    }) as OperationObject;

  return {
    schemas,
    tag: {
      name: tag,
      description: `Typed routes of model ${name}${model.description ? `: ${model.description}` : ''}`,
    },
    paths: {
      [GENERIC_PREDICT.replace('{model}', name)]: {
        post: operation(
          generic.predict,
          `predict${prefix}`,
          `Predict one ${name} instance (typed)`,
          s('PredictRequest'),
          s('Prediction'),
          single,
        ),
      },
      [GENERIC_BATCH.replace('{model}', name)]: {
        post: operation(
          generic.batch,
          `predict${prefix}Batch`,
          `Predict many ${name} instances in one run (typed)`,
          s('BatchPredictRequest'),
          s('BatchPrediction'),
          batch,
        ),
      },
      [GENERIC_INFER.replace('{model}', name)]: {
        post: operation(
          generic.infer,
          `infer${prefix}`,
          `Open Inference Protocol inference with ${name} (typed)`,
          s('V2InferRequest'),
          undefined,
          v2Example(model, single),
        ),
      },
    },
  };
}

function genericOperations(base: OpenAPIObject): GenericOperations {
  const [predict, batch, infer] = [GENERIC_PREDICT, GENERIC_BATCH, GENERIC_INFER].map((p) => base.paths[p]?.post);
  if (!predict || !batch || !infer)
    throw new Error(`the document lacks one of ${GENERIC_PREDICT}, ${GENERIC_BATCH}, ${GENERIC_INFER}`);
  return { predict, batch, infer };
}

/** Typed views of every model, each with a unique schema prefix, in the order given. */
function modelApis(base: OpenAPIObject, models: readonly TypedModel[]): ModelApi[] {
  const generic = genericOperations(base);
  const taken = new Set<string>();
  return models.map((model) => {
    const prefix = schemaPrefix(model.name, taken);
    taken.add(prefix);
    return modelApi(model, prefix, generic);
  });
}

/** The whole document with every model's typed routes; `base` is left as it was. */
export function withModels(base: OpenAPIObject, models: readonly TypedModel[]): OpenAPIObject {
  const apis = modelApis(base, models);
  return {
    ...base,
    tags: [...(base.tags ?? []), ...apis.map((a) => a.tag)],
    paths: Object.assign({}, base.paths, ...apis.map((a) => a.paths)) as OpenAPIObject['paths'],
    components: {
      ...base.components,
      schemas: Object.assign({}, base.components?.schemas, ...apis.map((a) => a.schemas)) as Record<
        string,
        SchemaObject
      >,
    },
  };
}

/** Names of the schemas `value` refers to, followed through the schemas themselves. */
function referencedSchemas(value: unknown, schemas: Record<string, unknown>, found = new Set<string>()): Set<string> {
  if (Array.isArray(value)) {
    for (const v of value) referencedSchemas(v, schemas, found);
  } else if (typeof value === 'object' && value !== null) {
    for (const [key, v] of Object.entries(value)) {
      if (key === '$ref' && typeof v === 'string' && v.startsWith('#/components/schemas/')) {
        const name = v.slice('#/components/schemas/'.length);
        if (!found.has(name)) {
          found.add(name);
          referencedSchemas(schemas[name], schemas, found);
        }
      } else referencedSchemas(v, schemas, found);
    }
  }
  return found;
}

/** A document of one model's typed routes alone, with the schemas they use: for an SDK of that model. */
export function modelDocument(base: OpenAPIObject, model: TypedModel): OpenAPIObject {
  const [api] = modelApis(base, [model]);
  const all = { ...base.components?.schemas, ...api.schemas };
  const used = referencedSchemas(api.paths, all);
  return {
    ...base,
    info: { ...base.info, title: `${base.info.title}: model ${model.name}` },
    tags: [api.tag],
    paths: api.paths,
    components: {
      schemas: Object.fromEntries(Object.entries(all).filter(([name]) => used.has(name))),
      // The operations' security requirements name these: a document without them would make
      // generated clients send no key.
      ...(base.components?.securitySchemes ? { securitySchemes: base.components.securitySchemes } : {}),
    },
  };
}
