import { DomainError, InvalidInputError, ModelNotReadyError } from '../common/domain.errors';
import { toHalfBits } from '../models/float16';
import { TensorData } from '../models/model.types';
import { JsonTensorInput } from '../models/tensor.codec';
import { ModelDescription, TensorResult } from '../prediction/prediction.service';
import { V2InferRequestDto, V2RequestedOutputDto } from './dto/v2.dto';
import { decodeInputs, encodeMetadata, encodeResponse, V2_DATATYPES } from './v2.codec';

/** The JSON part of the answer: these cases ask for no binary output. */
const respond = (...args: Parameters<typeof encodeResponse>) => encodeResponse(...args).response;

const f32 = (dims: number[], ...values: number[]): TensorData => ({
  type: 'float32',
  dims,
  data: Float32Array.from(values),
});

/** An iris-like answer for two rows: a label per row and three class scores per row. */
const IRIS: TensorResult = {
  model: 'iris',
  version: 3,
  outputs: {
    output_label: { type: 'int64', dims: [2], data: BigInt64Array.of(0n, 2n) },
    output_probability: f32([2, 3], 0.75, 0.25, 0, 0.125, 0.125, 0.75),
  },
  labels: ['setosa', 'versicolor', 'virginica'],
};

/** A request body as the DTO would have let it through; only `outputs` and `id` matter to encodeResponse. */
const body = (outputs?: V2RequestedOutputDto[], id?: string): V2InferRequestDto => ({
  inputs: [{ name: 'x', shape: [1], datatype: 'FP32', data: [1] }],
  ...(outputs ? { outputs } : {}),
  ...(id !== undefined ? { id } : {}),
});

const classify = (name: string, classification: unknown): V2RequestedOutputDto => ({
  name,
  parameters: { classification } as V2RequestedOutputDto['parameters'],
});

/** The domain error `fn` throws; fails the test when it throws nothing. */
function refusal(fn: () => unknown): DomainError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(DomainError);
    return err as DomainError;
  }
  throw new Error('expected a refusal');
}

describe('V2_DATATYPES', () => {
  it("lists the protocol's 13 datatypes in the protocol's own order", () => {
    expect(V2_DATATYPES).toEqual([
      'BOOL',
      'UINT8',
      'UINT16',
      'UINT32',
      'UINT64',
      'INT8',
      'INT16',
      'INT32',
      'INT64',
      'FP16',
      'FP32',
      'FP64',
      'BYTES',
    ]);
  });
});

describe('decodeInputs', () => {
  it('names the element type of every datatype, keeping name, shape and data as sent', () => {
    const expected: Record<string, string> = {
      BOOL: 'bool',
      UINT8: 'uint8',
      UINT16: 'uint16',
      UINT32: 'uint32',
      UINT64: 'uint64',
      INT8: 'int8',
      INT16: 'int16',
      INT32: 'int32',
      INT64: 'int64',
      FP16: 'float16',
      FP32: 'float32',
      FP64: 'float64',
      BYTES: 'string',
    };
    const data = [[1], [2]];
    const inputs = decodeInputs({
      inputs: V2_DATATYPES.map((datatype, i) => ({ name: `in${i}`, datatype, shape: [2, 1], data })),
    });
    expect(inputs.map((i) => [i.name, i.type])).toEqual(V2_DATATYPES.map((d, i) => [`in${i}`, expected[d]]));
    for (const input of inputs) {
      expect(input.shape).toEqual([2, 1]);
      // The data is checked later, against the model: decoding neither copies nor flattens it.
      expect((input as JsonTensorInput).data).toBe(data);
    }
  });
});

describe('encodeResponse', () => {
  it('answers every output, in the order the model gave them, when the request names none', () => {
    expect(respond(body(), IRIS)).toEqual({
      model_name: 'iris',
      model_version: '3',
      outputs: [
        { name: 'output_label', datatype: 'INT64', shape: [2], data: [0, 2] },
        { name: 'output_probability', datatype: 'FP32', shape: [2, 3], data: [0.75, 0.25, 0, 0.125, 0.125, 0.75] },
      ],
    });
  });

  it('answers only the outputs asked for, in the order asked', () => {
    const response = respond(body([{ name: 'output_probability' }, { name: 'output_label' }]), IRIS);
    expect(response.outputs.map((o) => o.name)).toEqual(['output_probability', 'output_label']);
    expect(respond(body([{ name: 'output_label' }]), IRIS).outputs).toEqual([
      { name: 'output_label', datatype: 'INT64', shape: [2], data: [0, 2] },
    ]);
  });

  it('refuses an unknown output, naming it and where it was asked for', () => {
    const err = refusal(() => respond(body([{ name: 'output_label' }, { name: 'scores' }]), IRIS));
    expect(err).toBeInstanceOf(InvalidInputError);
    expect(err.message).toBe("Unknown output 'scores'; this model's outputs are output_label, output_probability");
    expect(err.details).toEqual([{ path: 'outputs[1].name', message: 'unknown output' }]);
  });

  it('answers an output in binary when it asks, with its size, and refuses a binary_data that is not a boolean', () => {
    const asked = (binary_data: unknown): V2RequestedOutputDto[] => [
      { name: 'output_label' },
      { name: 'output_probability', parameters: { binary_data } as V2RequestedOutputDto['parameters'] },
    ];
    for (const value of ['true', 1]) {
      const err = refusal(() => encodeResponse(body(asked(value)), IRIS));
      expect(err).toBeInstanceOf(InvalidInputError);
      expect(err.details).toEqual([
        { path: 'outputs[1].parameters.binary_data', message: `got ${JSON.stringify(value)}` },
      ]);
    }
    const binary = encodeResponse(body(asked(true)), IRIS);
    expect(binary.response.outputs[1]).toEqual({
      name: 'output_probability',
      datatype: 'FP32',
      shape: [2, 3],
      parameters: { binary_data_size: 24 },
    });
    expect(binary.blobs).toHaveLength(1);
    expect(Array.from(new Float32Array(new Uint8Array(binary.blobs[0]).buffer))).toEqual([
      0.75, 0.25, 0, 0.125, 0.125, 0.75,
    ]);
    expect(binary.response.outputs[0].data).toEqual([0, 2]);
    expect(respond(body(asked(false)), IRIS).outputs[1].data).toHaveLength(6);
  });

  it('classifies a score output into the top n "<score>:<index>:<label>" of each row, highest first', () => {
    const [out] = respond(body([classify('output_probability', 2)]), IRIS).outputs;
    expect(out).toEqual({
      name: 'output_probability',
      datatype: 'BYTES',
      shape: [2, 2],
      // Row 2 ties 0.125 between classes 0 and 1: the lower index comes first.
      data: ['0.750000:0:setosa', '0.250000:1:versicolor', '0.750000:2:virginica', '0.125000:0:setosa'],
    });
  });

  it('writes scores with 6 decimals, and classes without a label as "<score>:<index>"', () => {
    const result: TensorResult = {
      model: 'm',
      version: 1,
      outputs: { scores: { type: 'float64', dims: [1, 3], data: Float64Array.of(1 / 3, 2 / 3, 1e-7) } },
      labels: ['only-one'],
    };
    expect(respond(body([classify('scores', 3)]), result).outputs[0].data).toEqual([
      '0.666667:1',
      '0.333333:0:only-one',
      '0.000000:2',
    ]);
    const unlabelled = { ...result, labels: undefined };
    expect(respond(body([classify('scores', 1)]), unlabelled).outputs[0].data).toEqual(['0.666667:1']);
  });

  it('caps n at the number of classes', () => {
    const [out] = respond(body([classify('output_probability', 10)]), IRIS).outputs;
    expect(out.shape).toEqual([2, 3]);
    expect(out.data).toHaveLength(6);
    expect(out.data!.slice(0, 3)).toEqual(['0.750000:0:setosa', '0.250000:1:versicolor', '0.000000:2:virginica']);
  });

  it('classifies integer outputs too, wherever the class axis is last', () => {
    const result: TensorResult = {
      model: 'm',
      version: 1,
      outputs: { votes: { type: 'int32', dims: [3], data: Int32Array.of(2, 7, 5) } },
    };
    const [out] = respond(body([classify('votes', 2)]), result).outputs;
    expect(out).toEqual({ name: 'votes', datatype: 'BYTES', shape: [2], data: ['7.000000:1', '5.000000:2'] });
  });

  it('refuses a classification that is not a positive integer', () => {
    for (const n of [0, -1, 1.5, '2', null, true]) {
      const err = refusal(() => respond(body([{ name: 'output_label' }, classify('output_probability', n)]), IRIS));
      expect(err).toBeInstanceOf(InvalidInputError);
      expect(err.details).toEqual([
        { path: 'outputs[1].parameters.classification', message: `got ${JSON.stringify(n)}` },
      ]);
    }
  });

  it('refuses to classify string and bool outputs', () => {
    const result: TensorResult = {
      model: 'm',
      version: 1,
      outputs: {
        names: { type: 'string', dims: [1, 2], data: ['a', 'b'] },
        flags: { type: 'bool', dims: [1, 2], data: Uint8Array.of(1, 0) },
      },
    };
    for (const [i, name] of ['names', 'flags'].entries()) {
      const asked = [{ name: 'names' }, { name: 'flags' }];
      asked[i] = classify(name, 1);
      const err = refusal(() => respond(body(asked), result));
      expect(err.message).toBe(
        `Output '${name}' holds ${name === 'names' ? 'string' : 'bool'}, not scores to classify`,
      );
      expect(err.details).toEqual([
        { path: `outputs[${i}].parameters.classification`, message: 'needs a numeric output' },
      ]);
    }
  });

  it('echoes the request id only when one was sent', () => {
    expect(respond(body(undefined, '42'), IRIS).id).toBe('42');
    expect(respond(body(undefined, ''), IRIS).id).toBe('');
    expect(Object.keys(respond(body(), IRIS))).not.toContain('id');
  });

  it('writes 64-bit integers beyond 2^53 as decimal strings, bools as true/false and float16 as numbers', () => {
    const result: TensorResult = {
      model: 'm',
      version: 12,
      outputs: {
        big: { type: 'int64', dims: [3], data: BigInt64Array.of(2n ** 53n + 1n, -(2n ** 63n), -5n) },
        ubig: { type: 'uint64', dims: [2], data: BigUint64Array.of(2n ** 64n - 1n, 9007199254740991n) },
        flags: { type: 'bool', dims: [2], data: Uint8Array.of(1, 0) },
        half: { type: 'float16', dims: [3], data: Uint16Array.from([1.5, -2, 65504], toHalfBits) },
        text: { type: 'string', dims: [1], data: ['héllo'] },
      },
    };
    const response = respond(body(), result);
    expect(response.model_version).toBe('12');
    expect(response.outputs).toEqual([
      { name: 'big', datatype: 'INT64', shape: [3], data: ['9007199254740993', '-9223372036854775808', -5] },
      { name: 'ubig', datatype: 'UINT64', shape: [2], data: ['18446744073709551615', 9007199254740991] },
      { name: 'flags', datatype: 'BOOL', shape: [2], data: [true, false] },
      { name: 'half', datatype: 'FP16', shape: [3], data: [1.5, -2, 65504] },
      { name: 'text', datatype: 'BYTES', shape: [1], data: ['héllo'] },
    ]);
  });
});

describe('encodeMetadata', () => {
  const description: ModelDescription = {
    name: 'iris',
    description: 'a classifier',
    defaultVersion: 2,
    state: 'FAILED',
    reason: 'version 3: bad file',
    versions: [
      { version: 1, state: 'READY' },
      { version: 2, state: 'READY' },
      { version: 3, state: 'FAILED', reason: 'bad file' },
    ],
    version: 2,
    versionState: 'READY',
    batching: null,
    placement: null,
    platform: 'onnxruntime-node',
    inputs: [{ name: 'float_input', type: 'float32', shape: [-1, 4] }],
    outputs: [
      { name: 'output_label', type: 'int64', shape: [-1] },
      { name: 'output_probability', type: 'float16', shape: [-1, 3] },
    ],
    batchable: true,
    labels: ['a', 'b', 'c'],
    features: null,
    labelOutput: 'output_label',
    probabilityOutput: 'output_probability',
  };

  it("describes a ready version as the protocol does: Triton's ONNX platform name, versions as strings", () => {
    expect(encodeMetadata(description)).toEqual({
      name: 'iris',
      versions: ['1', '2', '3'],
      platform: 'onnx_onnxv1',
      inputs: [{ name: 'float_input', datatype: 'FP32', shape: [-1, 4] }],
      outputs: [
        { name: 'output_label', datatype: 'INT64', shape: [-1] },
        { name: 'output_probability', datatype: 'FP16', shape: [-1, 3] },
      ],
    });
  });

  it('refuses a version that is not READY with MODEL_NOT_READY and its reason', () => {
    const failed = refusal(() => encodeMetadata({ ...description, version: 3, versionState: 'FAILED' }));
    expect(failed).toBeInstanceOf(ModelNotReadyError);
    expect(failed.message).toBe("Model 'iris' version 3 is FAILED: bad file");
    const loading = refusal(() =>
      encodeMetadata({
        ...description,
        versions: [...description.versions, { version: 4, state: 'LOADING' }],
        version: 4,
        versionState: 'LOADING',
      }),
    );
    expect(loading.code).toBe('MODEL_NOT_READY');
    expect(loading.message).toBe("Model 'iris' version 4 is LOADING");
  });
});
