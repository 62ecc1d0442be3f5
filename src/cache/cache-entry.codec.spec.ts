import { TensorData } from '../models/model.types';
import { CachedVersion, fromStored, rowKeys, toStored } from './cache-entry.codec';

const DIGEST = '0123456789abcdef' + 'fedcba9876543210'.repeat(3);
const IRIS: CachedVersion = { model: 'iris', version: 1, digest: DIGEST };
const PREFIX = 'pred:';

const f32 = (dims: number[], ...values: number[]): TensorData => ({
  type: 'float32',
  dims,
  data: Float32Array.from(values),
});
/** The keys of a batched feed with the iris version and prefix unless told. */
const keysOf = (feeds: Record<string, TensorData>, target = IRIS, prefix = PREFIX) =>
  rowKeys(prefix, target, feeds, Object.values(feeds)[0].dims[0], true);
const keyOf = (feeds: Record<string, TensorData>, target = IRIS, prefix = PREFIX) => {
  const keys = keysOf(feeds, target, prefix);
  expect(keys).toHaveLength(1);
  return keys[0];
};

/** The bytes a tensor's values occupy, whatever view they are. */
const bytesOf = (t: TensorData) =>
  Array.isArray(t.data)
    ? Buffer.from(JSON.stringify(t.data))
    : Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
/** A stored entry as it comes back from Redis: through JSON, as text. */
const throughJson = (outputs: Record<string, TensorData>): unknown => JSON.parse(JSON.stringify(toStored(outputs)));

describe('rowKeys', () => {
  it('gives one key per row, in the form <prefix><model>:<version>:<16 hex of the digest>:<hash>', () => {
    const keys = keysOf({ x: f32([3, 2], 1, 2, 3, 4, 5, 6) });
    expect(keys).toHaveLength(3);
    for (const key of keys) expect(key).toMatch(/^pred:iris:1:0123456789abcdef:[A-Za-z0-9_-]{43}$/);
    expect(new Set(keys).size).toBe(3);
    expect(rowKeys(PREFIX, IRIS, { x: f32([0, 2]) }, 0, true)).toEqual([]);
  });

  it('keys a row by its values alone, whatever its place in the batch', () => {
    const [a, b, a2] = keysOf({ x: f32([3, 2], 1, 2, 3, 4, 1, 2) });
    expect(a2).toBe(a);
    expect(b).not.toBe(a);
    expect(keyOf({ x: f32([1, 2], 3, 4) })).toBe(b);
    expect(keysOf({ x: f32([2, 2], 3, 4, 1, 2) })).toEqual([b, a]);
  });

  it('is the same key for the same feeds in any order of input names', () => {
    const x = f32([1, 2], 1, 2);
    const mask: TensorData = { type: 'bool', dims: [1, 2], data: Uint8Array.of(1, 0) };
    expect(keyOf({ x, mask })).toBe(keyOf({ mask, x }));
  });

  it('hashes a view of a larger buffer by the view alone', () => {
    const whole = Float32Array.of(9, 9, 1, 2, 9);
    const view = whole.subarray(2, 4);
    expect(view.byteOffset).toBe(8);
    expect(keyOf({ x: { type: 'float32', dims: [1, 2], data: view } })).toBe(keyOf({ x: f32([1, 2], 1, 2) }));
  });

  it('changes with anything that changes what the model is fed or which model answers', () => {
    const base = keyOf({ x: f32([1, 2], 1, 2) });
    const same = new Float32Array([1, 2]);
    const variants: Record<string, string> = {
      'input name': keyOf({ z: f32([1, 2], 1, 2) }),
      // The same bytes read as another type are another input.
      'element type': keyOf({ x: { type: 'int32', dims: [1, 2], data: new Int32Array(same.buffer) } }),
      'inner shape': keyOf({ x: { type: 'float32', dims: [1, 2, 1], data: same } }),
      values: keyOf({ x: f32([1, 2], 1, 3) }),
      'a second input': keyOf({ x: f32([1, 2], 1, 2), w: f32([1, 1], 0) }),
      model: keyOf({ x: f32([1, 2], 1, 2) }, { ...IRIS, model: 'iris2' }),
      version: keyOf({ x: f32([1, 2], 1, 2) }, { ...IRIS, version: 2 }),
      digest: keyOf({ x: f32([1, 2], 1, 2) }, { ...IRIS, digest: 'f' + DIGEST.slice(1) }),
      prefix: keyOf({ x: f32([1, 2], 1, 2) }, IRIS, 'other:'),
    };
    for (const [what, key] of Object.entries(variants)) expect([what, key]).not.toEqual([what, base]);
    expect(new Set(Object.values(variants)).size).toBe(Object.keys(variants).length);
  });

  it('keeps only the first 16 hex digits of the digest in the key', () => {
    const base = keyOf({ x: f32([1, 2], 1, 2) });
    expect(keyOf({ x: f32([1, 2], 1, 2) }, { ...IRIS, digest: DIGEST.slice(0, 16) + '0'.repeat(48) })).toBe(base);
  });

  it('cannot be fooled by names and values that run together', () => {
    // Without length prefixes and separators, these two feeds would hash the same text.
    const one = keyOf({ ab: { type: 'string', dims: [1, 1], data: ['c'] } });
    const other = keyOf({ a: { type: 'string', dims: [1, 1], data: ['bc'] } });
    expect(one).not.toBe(other);
    // One string holding a comma against two strings: the JSON of the values tells them apart.
    const split = keysOf({ s: { type: 'string', dims: [2, 1], data: ['a', 'b'] } });
    const joined = keyOf({ s: { type: 'string', dims: [1, 1], data: ['a","b'] } });
    expect(split).not.toContain(joined);
    expect(new Set(split).size).toBe(2);
  });

  it('keys string rows like numeric ones: by their values, wherever they are', () => {
    const [a, b, a2] = keysOf({ text: { type: 'string', dims: [3], data: ['hello', 'world', 'hello'] } });
    expect(a2).toBe(a);
    expect(b).not.toBe(a);
  });

  it('keys the whole feed as one instance when the model has no batch dimension', () => {
    const feeds = { x: f32([2, 2], 1, 2, 3, 4) };
    const [whole] = rowKeys(PREFIX, IRIS, feeds, 1, false);
    expect(whole).toMatch(/^pred:iris:1:0123456789abcdef:/);
    expect(rowKeys(PREFIX, IRIS, feeds, 1, false)).toEqual([whole]);
    // The first dimension is part of an unbatched instance's shape, so it is not any row's key.
    expect(keysOf(feeds)).not.toContain(whole);
    expect(rowKeys(PREFIX, IRIS, { x: f32([4, 1], 1, 2, 3, 4) }, 1, false)).not.toEqual([whole]);
  });
});

describe('toStored and fromStored', () => {
  const CASES: [string, TensorData][] = [
    ['float16 (as its bits)', { type: 'float16', dims: [2, 2], data: Uint16Array.of(0x3c00, 0xc000, 0x7c00, 0x7e00) }],
    ['float32', { type: 'float32', dims: [1, 4], data: Float32Array.of(1.5, -0, Infinity, NaN) }],
    ['float64', { type: 'float64', dims: [3], data: Float64Array.of(Math.PI, -Number.MAX_VALUE, Number.MIN_VALUE) }],
    ['int8', { type: 'int8', dims: [3], data: Int8Array.of(-128, 0, 127) }],
    ['int16', { type: 'int16', dims: [3], data: Int16Array.of(-32768, 1, 32767) }],
    ['int32', { type: 'int32', dims: [3], data: Int32Array.of(-(2 ** 31), 2, 2 ** 31 - 1) }],
    ['int64', { type: 'int64', dims: [3], data: BigInt64Array.of(-(2n ** 63n), 3n, 2n ** 63n - 1n) }],
    ['uint8', { type: 'uint8', dims: [3], data: Uint8Array.of(0, 128, 255) }],
    ['uint16', { type: 'uint16', dims: [3], data: Uint16Array.of(0, 4, 65535) }],
    ['uint32', { type: 'uint32', dims: [3], data: Uint32Array.of(0, 5, 2 ** 32 - 1) }],
    ['uint64', { type: 'uint64', dims: [3], data: BigUint64Array.of(0n, 6n, 2n ** 64n - 1n) }],
    ['bool (as bytes)', { type: 'bool', dims: [1, 3], data: Uint8Array.of(1, 0, 1) }],
    ['string', { type: 'string', dims: [1, 3], data: ['setosa', '', 'ünïcødé "quoted"'] }],
    ['an empty tensor', { type: 'float32', dims: [0, 4], data: new Float32Array(0) }],
    ['a scalar', { type: 'int64', dims: [], data: BigInt64Array.of(42n) }],
  ];

  /** The same tensor as a view at a non-zero offset into a larger buffer, as sliceRows hands out. */
  function asView(t: TensorData): TensorData {
    if (Array.isArray(t.data)) return t;
    const data = t.data as Uint8Array;
    const Type = data.constructor as new (n: number) => Uint8Array;
    const padded = new Type(data.length + 2);
    padded.set(data, 1);
    return { ...t, data: padded.subarray(1, 1 + data.length) };
  }

  it.each(CASES)('round-trips %s through JSON exactly: type, dims, array type and bytes', (_, tensor) => {
    const back = fromStored(throughJson({ out: tensor }));
    expect(back).toBeDefined();
    const out = back!.out;
    expect(out.type).toBe(tensor.type);
    expect(out.dims).toEqual(tensor.dims);
    expect(out.data.constructor).toBe(tensor.data.constructor);
    expect(out.data.length).toBe(tensor.data.length);
    expect(bytesOf(out).equals(bytesOf(tensor))).toBe(true);
  });

  it.each(CASES.filter(([, t]) => !Array.isArray(t.data) && t.data.length > 0))(
    'stores only the viewed values of a %s subarray at a non-zero byteOffset',
    (_, tensor) => {
      const view = asView(tensor);
      expect((view.data as Uint8Array).byteOffset).toBeGreaterThan(0);
      const stored = JSON.parse(JSON.stringify(toStored({ out: view })));
      expect(Buffer.from(stored.out.v, 'base64').equals(bytesOf(tensor))).toBe(true);
      const out = fromStored(stored)!.out;
      expect(out.data.constructor).toBe(tensor.data.constructor);
      expect(bytesOf(out).equals(bytesOf(tensor))).toBe(true);
    },
  );

  it('stores little-endian bytes as base64 and strings as they are, under short field names', () => {
    expect(
      toStored({
        probabilities: f32([1, 2], 1, 2),
        label: { type: 'string', dims: [1], data: ['virginica'] },
      }),
    ).toEqual({
      probabilities: { t: 'float32', d: [1, 2], v: 'AACAPwAAAEA=' },
      label: { t: 'string', d: [1], v: ['virginica'] },
    });
  });

  it('reads back every output of an entry, as arrays it owns', () => {
    const stored = throughJson({
      output_label: { type: 'int64', dims: [2], data: BigInt64Array.of(0n, 2n) },
      output_probability: f32([2, 3], 0.9, 0.05, 0.05, 0.1, 0.2, 0.7),
      names: { type: 'string', dims: [2], data: ['setosa', 'virginica'] },
    }) as { names: { v: string[] } };
    const back = fromStored(stored)!;
    expect(Object.keys(back)).toEqual(['output_label', 'output_probability', 'names']);
    expect(Array.from(back.output_label.data as BigInt64Array)).toEqual([0n, 2n]);
    expect(Array.from(back.output_probability.data as Float32Array)).toEqual(
      Array.from(Float32Array.of(0.9, 0.05, 0.05, 0.1, 0.2, 0.7)),
    );
    expect(back.names.data).toEqual(['setosa', 'virginica']);
    (back.names.data as string[])[0] = 'changed';
    expect(stored.names.v[0]).toBe('setosa');
  });

  const good = { t: 'float32', d: [1, 2], v: 'AACAPwAAAEA=' };
  it.each([
    ['undefined', undefined],
    ['null', null],
    ['a string', 'AACAPwAAAEA='],
    ['a number', 42],
    ['an empty object', {}],
    ['an output that is null', { y: null }],
    ['an output that is a number', { y: 7 }],
    ['no element type', { y: { d: [1, 2], v: good.v } }],
    ['an unknown element type', { y: { ...good, t: 'float8' } }],
    ['an element type named after an Object member', { y: { ...good, t: 'constructor' } }],
    ['another Object member as the type', { y: { ...good, t: 'toString' } }],
    ['dims that are not an array', { y: { ...good, d: 2 } }],
    ['negative dims', { y: { ...good, d: [-1, -2] } }],
    ['fractional dims', { y: { ...good, d: [0.5, 4] } }],
    ['dims given as strings', { y: { ...good, d: ['1', '2'] } }],
    ['too few bytes for the dims', { y: { ...good, d: [1, 3] } }],
    ['too many bytes for the dims', { y: { ...good, d: [1, 1] } }],
    ['bytes of the wrong element size', { y: { ...good, t: 'float64', d: [1, 2] } }],
    ['numeric values that are not base64 text', { y: { ...good, v: [1, 2] } }],
    ['strings that are not an array', { y: { t: 'string', d: [1], v: 'virginica' } }],
    ['fewer strings than the dims', { y: { t: 'string', d: [2], v: ['a'] } }],
    ['string tensors holding other values', { y: { t: 'string', d: [2], v: [1, { a: 2 }] } }],
    ['an array rather than outputs by name', [good]],
    ['one damaged output among good ones', { x: good, y: { ...good, d: [3] } }],
  ])('refuses %s with undefined', (_, stored) => {
    expect(fromStored(stored)).toBeUndefined();
  });

  it('accepts the well-formed entry those damaged ones were made from', () => {
    expect(fromStored({ y: good })).toEqual({ y: { type: 'float32', dims: [1, 2], data: Float32Array.of(1, 2) } });
  });
});
