import { ErrorDetail, InvalidInputError } from '../common/domain.errors';
import { toHalfBits } from './float16';
import { ModelSignature, TensorSpec } from './model.types';
import { encodeTensors, flatJson, MAX_DETAILS, nestedJson, NOT_THE_INPUTS, TensorInput } from './tensor.codec';

const spec = (name: string, type: TensorSpec['type'], shape: number[]): TensorSpec => ({ name, type, shape });

const MULTI: ModelSignature = {
  inputs: [spec('a', 'float32', [-1, 2]), spec('b', 'int64', [-1, 3])],
  outputs: [spec('y', 'float32', [-1, 1])],
  batchable: true,
};

const FIXED: ModelSignature = {
  inputs: [spec('x', 'float32', [2, 2])],
  outputs: [spec('y', 'float32', [2])],
  batchable: false,
};

const at = (i: number) => `inputs[${i}]`;

const A: TensorInput = { name: 'a', type: 'float32', shape: [2, 2], data: [0.5, 1, 2, 3] };
const B: TensorInput = { name: 'b', type: 'int64', shape: [2, 3], data: [1, 2, 3, 4, 5, 6] };

/** The refusal of these inputs: its message and details. */
function refusal(signature: ModelSignature, inputs: TensorInput[]): { message: string; details: ErrorDetail[] } {
  try {
    encodeTensors(signature, inputs, at);
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidInputError);
    return { message: (err as Error).message, details: [...(err as InvalidInputError).details] };
  }
  throw new Error('expected the inputs to be refused');
}

describe('encodeTensors', () => {
  it('packs whole tensors as their element types, whatever order they come in; count is the batch', () => {
    const run = encodeTensors(MULTI, [B, A], at);
    expect(run.count).toBe(2);
    expect(run.feeds).toEqual({
      a: { type: 'float32', dims: [2, 2], data: Float32Array.of(0.5, 1, 2, 3) },
      b: { type: 'int64', dims: [2, 3], data: BigInt64Array.of(1n, 2n, 3n, 4n, 5n, 6n) },
    });
  });

  it('reads "NaN", "Infinity" and "-Infinity" as those floats, the way tensor protocols write them in JSON', () => {
    const run = encodeTensors(MULTI, [{ ...A, data: ['NaN', 'Infinity', '-Infinity', 1] }, B], at);
    expect(Array.from(run.feeds.a.data as Float32Array)).toEqual([NaN, Infinity, -Infinity, 1]);
    expect(
      refusal(MULTI, [
        { ...A, data: ['nan', 1, 2, 3] },
        { ...B, data: ['NaN', 2, 3, 4, 5, 6] },
      ]).details,
    ).toEqual([
      { path: 'inputs[0].data[0]', message: expect.stringMatching(/finite number/) },
      { path: 'inputs[1].data[0]', message: expect.any(String) },
    ]);
  });

  it('reads nested data row-major, the same as flat data', () => {
    const nested = encodeTensors(
      MULTI,
      [
        {
          ...A,
          data: [
            [0.5, 1],
            [2, 3],
          ],
        },
        {
          ...B,
          data: [
            [1, 2, 3],
            [4, 5, 6],
          ],
        },
      ],
      at,
    );
    expect(nested).toEqual(encodeTensors(MULTI, [A, B], at));
  });

  it('reads int64 beyond 2^53 from decimal strings, and bool and string elements', () => {
    const signature: ModelSignature = {
      inputs: [spec('big', 'int64', [-1]), spec('flag', 'bool', [-1]), spec('text', 'string', [-1])],
      outputs: [spec('y', 'float32', [-1])],
      batchable: true,
    };
    const run = encodeTensors(
      signature,
      [
        { name: 'big', type: 'int64', shape: [2], data: ['9007199254740993', -3] },
        { name: 'flag', type: 'bool', shape: [2], data: [true, false] },
        { name: 'text', type: 'string', shape: [2], data: ['x', ''] },
      ],
      at,
    );
    expect(run.feeds.big.data).toEqual(BigInt64Array.of(9007199254740993n, -3n));
    expect(run.feeds.flag.data).toEqual(Uint8Array.of(1, 0));
    expect(run.feeds.text.data).toEqual(['x', '']);
  });

  it('counts one instance for a model without a batch dimension, whatever its first dimension', () => {
    const run = encodeTensors(FIXED, [{ name: 'x', type: 'float32', shape: [2, 2], data: [1, 2, 3, 4] }], at);
    expect(run.count).toBe(1);
    expect(run.feeds.x.dims).toEqual([2, 2]);
    expect(refusal(FIXED, [{ name: 'x', type: 'float32', shape: [1, 2], data: [1, 2] }]).details).toEqual([
      { path: 'inputs[0].shape', message: "input 'x' has shape [2, 2]; got [1, 2]" },
    ]);
  });

  it('refuses unknown, missing and twice-given inputs together, before reading any data', () => {
    const { message, details } = refusal(MULTI, [
      { ...A, data: 'not read' },
      { name: 'c', type: 'float32', shape: [1], data: [1] },
      { ...A, data: 'not read either' },
    ]);
    expect(message).toBe(NOT_THE_INPUTS);
    expect(details).toEqual([
      { path: 'inputs[1].name', message: "unknown input 'c'; this model's inputs are a, b" },
      { path: 'inputs[2].name', message: "input 'a' is given twice" },
      { path: 'inputs', message: "missing input 'b' (int64, shape [*, 3])" },
    ]);
  });

  it('refuses a wrong datatype, a wrong shape and data that is not an array, each at its own path', () => {
    expect(
      refusal(MULTI, [
        { ...A, type: 'float64' },
        { ...B, shape: [2, 4] },
      ]).details,
    ).toEqual([
      { path: 'inputs[0].datatype', message: "input 'a' holds float32, not float64" },
      { path: 'inputs[1].shape', message: "input 'b' has shape [*, 3]; got [2, 4]" },
    ]);
    expect(
      refusal(MULTI, [
        { ...A, shape: [4] },
        { ...B, data: { 0: 1 } },
      ]).details,
    ).toEqual([
      { path: 'inputs[0].shape', message: "input 'a' has shape [*, 2]; got [4]" },
      { path: 'inputs[1].data', message: 'data must be an array, got {"0":1}' },
    ]);
    expect(refusal(MULTI, [{ ...A, shape: [2, 2, 1] }, B]).details).toEqual([
      { path: 'inputs[0].shape', message: "input 'a' has shape [*, 2]; got [2, 2, 1]" },
    ]);
  });

  it('refuses data that holds more or fewer values than the shape', () => {
    expect(
      refusal(MULTI, [
        { ...A, data: [1, 2, 3] },
        { ...B, data: [[1, 2, 3, 4, 5, 6, 7]] },
      ]).details,
    ).toEqual([
      { path: 'inputs[0].data', message: 'shape [2, 2] holds 4 values; data has 3' },
      { path: 'inputs[1].data', message: 'shape [2, 3] holds 6 values; data has 7' },
    ]);
  });

  it('names each bad element by its row-major index, in nested data too', () => {
    const { message, details } = refusal(MULTI, [
      { ...A, data: [0.5, Infinity, 2, 3] },
      {
        ...B,
        data: [
          [1, 2.5, 3],
          [4, 'x', 6],
        ],
      },
    ]);
    expect(message).toBe(NOT_THE_INPUTS);
    expect(details).toEqual([
      { path: 'inputs[0].data[1]', message: 'must be a finite number, got Infinity' },
      { path: 'inputs[1].data[1]', message: 'must be a whole number (as a decimal string beyond 2^53), got 2.5' },
      { path: 'inputs[1].data[4]', message: 'must be a whole number (as a decimal string beyond 2^53), got "x"' },
    ]);
  });

  it(`reports at most ${MAX_DETAILS} problems, however many inputs hold them`, () => {
    const bad = (n: number) => Array.from({ length: n }, () => 'x');
    const one = refusal({ ...MULTI, inputs: [MULTI.inputs[0]] }, [{ ...A, shape: [25, 2], data: bad(50) }]).details;
    expect(one).toHaveLength(MAX_DETAILS);
    expect(one.map((d) => d.path)).toEqual(Array.from({ length: MAX_DETAILS }, (_, k) => `inputs[0].data[${k}]`));
    const twoFloats: ModelSignature = {
      ...MULTI,
      inputs: [spec('a', 'float32', [-1, 2]), spec('c', 'float32', [-1, 3])],
    };
    const both = refusal(twoFloats, [
      { ...A, shape: [6, 2], data: bad(12) },
      { name: 'c', type: 'float32', shape: [6, 3], data: bad(18) },
    ]).details;
    expect(both).toHaveLength(MAX_DETAILS);
    expect(both[11].path).toBe('inputs[0].data[11]');
    expect(both[12].path).toBe('inputs[1].data[0]');
    expect(both.at(-1)!.path).toBe('inputs[1].data[7]');
    const unknown = Array.from({ length: 30 }, (_, i): TensorInput => ({ ...A, name: `z${i}` }));
    expect(refusal(MULTI, unknown).details).toHaveLength(MAX_DETAILS);
    // A good int64 input after the limit is reached is left unpacked: the request is refused as invalid input.
    const full = refusal(MULTI, [
      { ...A, shape: [10, 2], data: bad(20) },
      { ...B, shape: [10, 3], data: Array.from({ length: 30 }, () => 1) },
    ]);
    expect(full.message).toBe(NOT_THE_INPUTS);
    expect(full.details).toHaveLength(MAX_DETAILS);
  });

  it('refuses inputs that disagree on the batch size', () => {
    const { message, details } = refusal(MULTI, [A, { ...B, shape: [3, 3], data: [1, 2, 3, 4, 5, 6, 7, 8, 9] }]);
    expect(message).toBe('The inputs disagree on the batch size');
    expect(details).toEqual([{ path: 'inputs', message: 'first dimensions 2, 3; they must be equal' }]);
  });
});

describe('nestedJson', () => {
  it('nests flat values into the dimensions given, from an offset', () => {
    const data = Float32Array.of(1, 2, 3, 4, 5, 6, 7, 8);
    expect(nestedJson(data, 'float32', [2, 2])).toEqual([
      [1, 2],
      [3, 4],
    ]);
    expect(nestedJson(data, 'float32', [2, 2], 4)).toEqual([
      [5, 6],
      [7, 8],
    ]);
    expect(nestedJson(data, 'float32', [3], 2)).toEqual([3, 4, 5]);
    expect(nestedJson(data, 'float32', [], 7)).toBe(8);
    expect(nestedJson(data, 'float32', [2, 0])).toEqual([[], []]);
  });

  it('writes each element type as JSON', () => {
    expect(nestedJson(BigInt64Array.of(2n ** 60n, -1n), 'int64', [1, 2])).toEqual([['1152921504606846976', -1]]);
    expect(nestedJson(Uint8Array.of(0, 1), 'bool', [2])).toEqual([false, true]);
    expect(nestedJson(Uint16Array.from([0.5, -1], toHalfBits), 'float16', [2])).toEqual([0.5, -1]);
    expect(nestedJson(['a', 'b', 'c'], 'string', [1, 1], 2)).toEqual([['c']]);
  });
});

describe('flatJson', () => {
  it("writes a tensor's values flat, element by element as JSON, whatever its dimensions", () => {
    expect(flatJson({ type: 'float64', dims: [2, 1], data: Float64Array.of(0.1, 0.2) })).toEqual([0.1, 0.2]);
    expect(flatJson({ type: 'uint64', dims: [2], data: BigUint64Array.of(2n ** 64n - 1n, 7n) })).toEqual([
      '18446744073709551615',
      7,
    ]);
    expect(flatJson({ type: 'bool', dims: [1, 2], data: Uint8Array.of(1, 0) })).toEqual([true, false]);
    expect(flatJson({ type: 'float16', dims: [1], data: Uint16Array.of(toHalfBits(65504)) })).toEqual([65504]);
    expect(flatJson({ type: 'int8', dims: [2], data: Int8Array.of(-128, 127) })).toEqual([-128, 127]);
    expect(flatJson({ type: 'string', dims: [0], data: [] })).toEqual([]);
  });
});
