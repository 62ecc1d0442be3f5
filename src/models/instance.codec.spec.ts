import { InvalidInputError } from '../common/domain.errors';
import { ModelSignature, TensorSpec } from './model.types';
import { decodeOutputs, encodeInstances } from './instance.codec';

const spec = (name: string, type: TensorSpec['type'], shape: number[]): TensorSpec => ({ name, type, shape });

const iris: ModelSignature = {
  inputs: [spec('float_input', 'float32', [-1, 4])],
  outputs: [spec('output_label', 'int64', [-1]), spec('output_probability', 'float32', [-1, 3])],
  batchable: true,
  features: ['sepal_length', 'sepal_width', 'petal_length', 'petal_width'],
};

const multi: ModelSignature = {
  inputs: [
    spec('a', 'float32', [-1, 2]),
    spec('b', 'int64', [-1, 3]),
    spec('flag', 'bool', [-1]),
    spec('s', 'string', [-1, -1]),
  ],
  outputs: [spec('out', 'float32', [-1, 1])],
  batchable: true,
};

const fixed: ModelSignature = {
  inputs: [spec('x', 'float32', [1, 4])],
  outputs: [spec('y', 'float32', [1, 2])],
  batchable: false,
};

const at = (i: number) => `instances[${i}]`;

function problems(signature: ModelSignature, instances: unknown[]): { path: string; message: string }[] {
  try {
    encodeInstances(signature, instances, at);
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidInputError);
    return [...(err as InvalidInputError).details];
  }
  throw new Error('expected the instances to be refused');
}

describe('encodeInstances', () => {
  it('stacks every form of an instance into one batch tensor, in order', () => {
    const [run] = encodeInstances(
      iris,
      [
        [1, 2, 3, 4],
        { features: [5, 6, 7, 8] },
        { sepal_length: 9, sepal_width: 10, petal_length: 11, petal_width: 12 },
        { features: { petal_width: 16, petal_length: 15, sepal_width: 14, sepal_length: 13 } },
        { inputs: { float_input: [17, 18, 19, 20] } },
      ],
      at,
    );
    expect(run.count).toBe(5);
    expect(run.feeds.float_input.dims).toEqual([5, 4]);
    expect(Array.from(run.feeds.float_input.data as Float32Array)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
  });

  it('encodes integer, boolean and string inputs with their own element types', () => {
    const [run] = encodeInstances(
      multi,
      [
        { inputs: { a: [0.5, 1], b: [1, -2, '9007199254740993'], flag: true, s: ['x', 'y'] } },
        { inputs: { a: [2, 3], b: [4, 5, 6], flag: false, s: ['z', 'w'] } },
      ],
      at,
    );
    expect(run.feeds.b.data).toEqual(BigInt64Array.from([1n, -2n, 9007199254740993n, 4n, 5n, 6n]));
    expect(run.feeds.flag.data).toEqual(Uint8Array.from([1, 0]));
    expect(run.feeds.s).toEqual({ type: 'string', dims: [2, 2], data: ['x', 'y', 'z', 'w'] });
  });

  it('runs a model without a batch dimension once per instance, accepting a flat array for a fixed shape', () => {
    const runs = encodeInstances(fixed, [[1, 2, 3, 4], { inputs: { x: [[5, 6, 7, 8]] } }], at);
    expect(runs).toHaveLength(2);
    expect(runs.map((r) => r.feeds.x.dims)).toEqual([
      [1, 4],
      [1, 4],
    ]);
    expect(Array.from(runs[1].feeds.x.data as Float32Array)).toEqual([5, 6, 7, 8]);
  });

  it.each([
    [[1, 2, 3], 'instances[0]', /expected shape \[4\] \(4 values\), got shape \[3\]/],
    [[1, 2, 'x', 4], 'instances[0][2]', /finite number, got "x"/],
    [[1, 2, null, 4], 'instances[0][2]', /finite number, got null/],
    [[1, 2, true, 4], 'instances[0][2]', /finite number, got true/],
    [[1, 2, 1e39, 4], 'instances[0][2]', /outside the float32 range/],
    [[[1, 2, 3, 4]], 'instances[0]', /expected shape \[4\].*got shape \[1, 4\]/],
    [{ features: [1, 2, 3, 4], inputs: {} }, 'instances[0]', /either "features" or "inputs"/],
    [{ features: [1, 2, 3, 4], extra: 1 }, 'instances[0].extra', /unknown field/],
    [{ sepal_length: 1, sepal_width: 2, petal_length: 3 }, 'instances[0].petal_width', /missing feature/],
    [
      { sepal_length: 1, sepal_width: 2, petal_length: 3, petal_width: 4, colour: 5 },
      'instances[0].colour',
      /unknown feature/,
    ],
    [{ inputs: { float_input: [1, 2, 3, 4], other: [1] } }, 'instances[0].inputs.other', /unknown input/],
    [{ inputs: {} }, 'instances[0].inputs.float_input', /missing input/],
    [{}, 'instances[0]', /empty instance/],
    ['1,2,3,4', 'instances[0]', /expected an array of features/],
  ])('refuses %j with a detail at %s', (instance, path, message) => {
    const [first] = problems(iris, [instance]);
    expect(first.path).toBe(path);
    expect(first.message).toMatch(message);
  });

  it.each([
    [{ inputs: { a: [1, 2], b: [1, 2.5, 3], flag: true, s: ['x'] } }, 'instances[0].inputs.b[1]', /whole number/],
    [
      { inputs: { a: [1, 2], b: [1, 2, '99999999999999999999'], flag: true, s: ['x'] } },
      'instances[0].inputs.b[2]',
      /outside the int64 range/,
    ],
    [
      { inputs: { a: [1, 2], b: [1, 2, 2 ** 60], flag: true, s: ['x'] } },
      'instances[0].inputs.b[2]',
      /decimal string beyond 2\^53/,
    ],
    [{ inputs: { a: [1, 2], b: [1, 2, 3], flag: 1, s: ['x'] } }, 'instances[0].inputs.flag', /true or false/],
    [{ inputs: { a: [1, 2], b: [1, 2, 3], flag: true, s: [7] } }, 'instances[0].inputs.s[0]', /must be a string/],
    [
      { inputs: { a: [[1], [2, 3]], b: [1, 2, 3], flag: true, s: ['x'] } },
      'instances[0].inputs.a',
      /expected shape \[2\]/,
    ],
  ])('checks element types of %j', (instance, path, message) => {
    const [first] = problems(multi, [instance]);
    expect(first.path).toBe(path);
    expect(first.message).toMatch(message);
  });

  it('refuses ragged nested arrays for a dynamic dimension', () => {
    const [first] = problems(multi, [{ inputs: { a: [1, 2], b: [1, 2, 3], flag: true, s: [['x'], 'y'] } }]);
    expect(first.path).toBe('instances[0].inputs.s');
  });

  it('refuses a batch whose instances disagree on a dynamic dimension', () => {
    const base = { a: [1, 2], b: [1, 2, 3], flag: true };
    const [first] = problems(multi, [{ inputs: { ...base, s: ['x'] } }, { inputs: { ...base, s: ['x', 'y'] } }]);
    expect(first).toEqual({ path: 'instances[1]', message: expect.stringMatching(/share a shape/) });
  });

  it('names the element and the row at fault inside a nested instance', () => {
    const grid: ModelSignature = {
      inputs: [spec('x', 'float32', [-1, 2, 3])],
      outputs: [spec('y', 'float32', [-1, 1])],
      batchable: true,
    };
    const good = [
      [1, 2, 3],
      [4, 5, 6],
    ];
    expect(Array.from(encodeInstances(grid, [good, good], at)[0].feeds.x.data as Float32Array)).toEqual([
      1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5, 6,
    ]);
    expect(
      problems(grid, [
        good,
        [
          [1, 2, 3],
          [4, 5, 'x'],
        ],
        [[1, 2, 3], [4]],
      ]),
    ).toEqual([
      { path: 'instances[1][1][2]', message: 'must be a finite number, got "x"' },
      { path: 'instances[2][1]', message: expect.stringMatching(/expected an array of 3 items/) },
    ]);
  });

  it('names the several inputs when features are sent to a multi-input model', () => {
    expect(problems(multi, [[1, 2]])[0].message).toMatch(/several inputs \(a, b, flag, s\)/);
  });

  it('reports problems of several instances, bounded', () => {
    const details = problems(
      iris,
      Array.from({ length: 100 }, () => ['x', 'x', 'x', 'x']),
    );
    expect(details).toHaveLength(20);
    expect(details[4].path).toBe('instances[1][0]');
  });
});

describe('decodeOutputs', () => {
  it('splits batch outputs per instance and makes JSON of every element type', () => {
    const out = decodeOutputs(
      iris,
      {
        output_label: { type: 'int64', dims: [2], data: BigInt64Array.from([2n, 2n ** 60n]) },
        output_probability: { type: 'float32', dims: [2, 3], data: Float32Array.from([0.5, 0.25, 0.25, 0, 0, 1]) },
      },
      2,
    );
    expect(out).toEqual([
      { output_label: 2, output_probability: [0.5, 0.25, 0.25] },
      { output_label: '1152921504606846976', output_probability: [0, 0, 1] },
    ]);
  });

  it('refuses an output whose rows do not match the instances', () => {
    expect(() =>
      decodeOutputs(iris, { output_label: { type: 'int64', dims: [1], data: BigInt64Array.from([1n]) } }, 2),
    ).toThrow(/1 rows for 2 instances/);
  });

  it('keeps the whole tensor for a model without a batch dimension', () => {
    const out = decodeOutputs(fixed, { y: { type: 'float32', dims: [1, 2], data: Float32Array.from([4, 6]) } }, 1);
    expect(out).toEqual([{ y: [[4, 6]] }]);
  });
});
