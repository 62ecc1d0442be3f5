import { ELEMENT_TYPES, ElementType, TensorValues } from './element-types';
import { fromRaw, rawByteSize, RawTensorError, toRaw } from './raw-tensor';

/**
 * The expected bytes are written here with DataView's explicit little-endian setters, not with typed
 * arrays, so that the spec holds the codec to the wire's byte order rather than to the machine's.
 */

type Numeric = Exclude<ElementType, 'string'>;

interface Case {
  /** The Open Inference Protocol's name, as the messages give it. */
  readonly v2: string;
  readonly bytes: number;
  /** Extremes and a value whose bytes differ from each other, so that a swapped order shows. */
  readonly values: readonly (number | bigint)[];
  readonly write: (view: DataView, at: number, value: number | bigint) => void;
}

const CASES: Record<Numeric, Case> = {
  bool: { v2: 'BOOL', bytes: 1, values: [1, 0, 1], write: (d, at, v) => d.setUint8(at, Number(v)) },
  uint8: { v2: 'UINT8', bytes: 1, values: [0, 255, 0x5a], write: (d, at, v) => d.setUint8(at, Number(v)) },
  uint16: { v2: 'UINT16', bytes: 2, values: [0, 65535, 0x1234], write: (d, at, v) => d.setUint16(at, Number(v), true) },
  uint32: {
    v2: 'UINT32',
    bytes: 4,
    values: [0, 4294967295, 0x12345678],
    write: (d, at, v) => d.setUint32(at, Number(v), true),
  },
  uint64: {
    v2: 'UINT64',
    bytes: 8,
    values: [0n, 2n ** 64n - 1n, 2n ** 53n + 1n],
    write: (d, at, v) => d.setBigUint64(at, BigInt(v), true),
  },
  int8: { v2: 'INT8', bytes: 1, values: [-128, 127, -2], write: (d, at, v) => d.setInt8(at, Number(v)) },
  int16: {
    v2: 'INT16',
    bytes: 2,
    values: [-32768, 32767, 0x1234],
    write: (d, at, v) => d.setInt16(at, Number(v), true),
  },
  int32: {
    v2: 'INT32',
    bytes: 4,
    values: [-2147483648, 2147483647, -0x12345678],
    write: (d, at, v) => d.setInt32(at, Number(v), true),
  },
  int64: {
    v2: 'INT64',
    bytes: 8,
    values: [-(2n ** 63n), 2n ** 63n - 1n, -(2n ** 62n) - 3n],
    write: (d, at, v) => d.setBigInt64(at, BigInt(v), true),
  },
  // Half precision travels as its bit patterns: 1, -2 and the largest half, 65504.
  float16: {
    v2: 'FP16',
    bytes: 2,
    values: [0x3c00, 0xc000, 0x7bff],
    write: (d, at, v) => d.setUint16(at, Number(v), true),
  },
  float32: {
    v2: 'FP32',
    bytes: 4,
    values: [1.5, Math.fround(-0.1), Math.fround(3.4e38)],
    write: (d, at, v) => d.setFloat32(at, Number(v), true),
  },
  float64: {
    v2: 'FP64',
    bytes: 8,
    values: [0.1, -1e300, Number.MIN_VALUE],
    write: (d, at, v) => d.setFloat64(at, Number(v), true),
  },
};
const NUMERIC = Object.keys(CASES) as Numeric[];

/** The case's values as raw bytes, at `offset` inside a larger buffer when asked. */
function rawOf(type: Numeric, offset = 0): Uint8Array {
  const c = CASES[type];
  const buffer = new ArrayBuffer(offset + c.bytes * c.values.length + 3);
  const view = new DataView(buffer, offset);
  c.values.forEach((v, i) => c.write(view, i * c.bytes, v));
  return new Uint8Array(buffer, offset, c.bytes * c.values.length);
}

/** BYTES elements as the extension frames them: a 4-byte little-endian length, then the UTF-8 bytes. */
function stringsRaw(parts: readonly (readonly number[])[]): Uint8Array {
  const out: number[] = [];
  for (const bytes of parts) out.push(bytes.length & 0xff, (bytes.length >> 8) & 0xff, 0, 0, ...bytes);
  return Uint8Array.from(out);
}
const utf8 = (text: string): number[] => [...Buffer.from(text, 'utf8')];

const errorOf = (fn: () => unknown): RawTensorError => {
  try {
    fn();
  } catch (err) {
    if (err instanceof RawTensorError) return err;
    throw err;
  }
  throw new Error('expected a RawTensorError');
};

describe('raw tensors', () => {
  it('has a case for every fixed-size element type of the table', () => {
    const fixed = Object.entries(ELEMENT_TYPES)
      .filter(([, row]) => 'bytes' in row)
      .map(([name]) => name);
    expect(NUMERIC.sort()).toEqual(fixed.sort());
  });

  describe('rawByteSize', () => {
    it.each(NUMERIC)('%s: elements × its byte width', (type) => {
      expect(rawByteSize(type, 0)).toBe(0);
      expect(rawByteSize(type, 7)).toBe(7 * CASES[type].bytes);
    });

    it('has no fixed size for BYTES', () => {
      expect(rawByteSize('string', 3)).toBeUndefined();
    });
  });

  describe('fixed-size elements', () => {
    it.each(NUMERIC)('%s: reads little-endian bytes into its values', (type) => {
      const values = fromRaw(type, rawOf(type), 3);
      expect(values.constructor).toBe(ELEMENT_TYPES[type].array);
      expect(values).toHaveLength(3);
      expect(Array.from(values as ArrayLike<number | bigint>)).toEqual(CASES[type].values);
    });

    it.each(NUMERIC)('%s: writes its values back as the same bytes', (type) => {
      const raw = rawOf(type);
      expect([...toRaw(type, fromRaw(type, raw, 3))]).toEqual([...raw]);
    });

    it('spells out the byte order on a known value', () => {
      expect(Array.from(fromRaw('int32', Uint8Array.of(1, 0, 0, 0), 1) as Int32Array)).toEqual([1]);
      expect(Array.from(fromRaw('uint16', Uint8Array.of(0x34, 0x12), 1) as Uint16Array)).toEqual([0x1234]);
      expect([...toRaw('float32', Float32Array.of(1))]).toEqual([0x00, 0x00, 0x80, 0x3f]);
      expect([...toRaw('int64', BigInt64Array.of(-2n))]).toEqual([0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
    });

    it('reads no elements from no bytes', () => {
      expect(fromRaw('float32', new Uint8Array(0), 0)).toEqual(new Float32Array(0));
      expect(toRaw('float32', new Float32Array(0))).toHaveLength(0);
    });
  });

  describe('exact sizes', () => {
    it.each(NUMERIC)('%s: a byte short or a byte over is refused, with both sizes', (type) => {
      const { v2, bytes } = CASES[type];
      const raw = rawOf(type);
      const need = 3 * bytes;
      const each = `(${bytes} each)`;
      expect(() => fromRaw(type, raw.subarray(0, need - 1), 3)).toThrow(
        new RawTensorError(`3 ${v2} elements take ${need} bytes ${each}; got ${need - 1}`),
      );
      const over = new Uint8Array(need + 1);
      over.set(raw);
      expect(() => fromRaw(type, over, 3)).toThrow(
        new RawTensorError(`3 ${v2} elements take ${need} bytes ${each}; got ${need + 1}`),
      );
    });

    it('names the element count the shape asks for, not the one the bytes would make', () => {
      // 16 bytes are four FP32 elements; the shape asked for two.
      expect(errorOf(() => fromRaw('float32', new Uint8Array(16), 2)).message).toBe(
        '2 FP32 elements take 8 bytes (4 each); got 16',
      );
    });
  });

  describe('BOOL', () => {
    it('takes bytes 0 and 1 only', () => {
      expect(Array.from(fromRaw('bool', Uint8Array.of(0, 1, 1, 0), 4) as Uint8Array)).toEqual([0, 1, 1, 0]);
    });

    it.each([2, 0x80, 0xff])('refuses byte %i, naming the first element that holds one', (byte) => {
      expect(errorOf(() => fromRaw('bool', Uint8Array.of(1, 0, byte, byte), 4)).message).toBe(
        `BOOL elements are bytes 0 or 1; element 2 is ${byte}`,
      );
    });
  });

  describe('BYTES', () => {
    const STRINGS = ['', 'a', 'héllo', '✓ 1', '🙂', ''];

    it('reads each element after its 4-byte little-endian length, empty and multi-byte UTF-8 alike', () => {
      expect(fromRaw('string', stringsRaw(STRINGS.map(utf8)), STRINGS.length)).toEqual(STRINGS);
    });

    it('writes each length in bytes of UTF-8, not in characters', () => {
      expect([...toRaw('string', ['', 'é', '🙂'])]).toEqual([
        ...[0, 0, 0, 0],
        ...[2, 0, 0, 0, 0xc3, 0xa9],
        ...[4, 0, 0, 0, 0xf0, 0x9f, 0x99, 0x82],
      ]);
    });

    it('round-trips through its own framing', () => {
      const long = 'x'.repeat(300); // a length past one byte: 300 = 0x012c
      const raw = toRaw('string', [...STRINGS, long]);
      expect([...raw.subarray(raw.length - 304, raw.length - 300)]).toEqual([0x2c, 0x01, 0, 0]);
      expect(fromRaw('string', raw, STRINGS.length + 1)).toEqual([...STRINGS, long]);
    });

    it('reads no elements from no bytes', () => {
      expect(fromRaw('string', new Uint8Array(0), 0)).toEqual([]);
      expect(toRaw('string', [])).toHaveLength(0);
    });

    it('refuses fewer bytes than a length for each element, before reading any', () => {
      expect(errorOf(() => fromRaw('string', stringsRaw([[], []]), 3)).message).toBe(
        '3 BYTES elements take at least 12 bytes (a 4-byte length each); got 8',
      );
      // A shape of a billion elements is refused from its size, with nothing allocated for it.
      expect(errorOf(() => fromRaw('string', new Uint8Array(8), 2 ** 30)).message).toBe(
        '1073741824 BYTES elements take at least 4294967296 bytes (a 4-byte length each); got 8',
      );
    });

    it('refuses an element whose 4-byte length is cut off', () => {
      // Enough bytes for two lengths in all, but the first element's string takes them.
      const raw = Uint8Array.of(...stringsRaw([utf8('abcd')]), 1, 0);
      expect(errorOf(() => fromRaw('string', raw, 2)).message).toBe(
        'BYTES element 1 of 2 has no 4-byte length: the data ends at byte 8',
      );
    });

    it('refuses a length past the end of the data', () => {
      const raw = Uint8Array.of(5, 0, 0, 0, ...utf8('ab'));
      expect(errorOf(() => fromRaw('string', raw, 1)).message).toBe('BYTES element 0 claims 5 bytes; only 2 remain');
    });

    it('refuses bytes left over after the last element', () => {
      expect(errorOf(() => fromRaw('string', Uint8Array.of(...stringsRaw([utf8('a')]), 0x62), 1)).message).toBe(
        '1 BYTES elements end at byte 5; 1 bytes are left over',
      );
      expect(errorOf(() => fromRaw('string', new Uint8Array(3), 0)).message).toBe(
        '0 BYTES elements end at byte 0; 3 bytes are left over',
      );
    });

    it('reads from a view that starts inside its buffer, and only that view', () => {
      const framed = stringsRaw([utf8('héllo'), []]);
      const buffer = new Uint8Array(framed.length + 6).fill(0xee);
      buffer.set(framed, 3);
      expect(fromRaw('string', buffer.subarray(3, 3 + framed.length), 2)).toEqual(['héllo', '']);
    });
  });

  describe('views and alignment', () => {
    // Offset 1 puts every element of more than one byte off its alignment in the buffer it came in.
    it.each(NUMERIC)('%s: reads a view at an odd offset into aligned values of their own', (type) => {
      const raw = rawOf(type, 1);
      expect(raw.byteOffset).toBe(1);
      const values = fromRaw(type, raw, 3) as Exclude<TensorValues, string[]>;
      expect(Array.from(values as ArrayLike<number | bigint>)).toEqual(CASES[type].values);
      expect(values.byteOffset).toBe(0);
      expect(values.buffer).not.toBe(raw.buffer);
      // A copy: the request's buffer may be reused once it is read.
      raw.fill(0);
      expect(Array.from(values as ArrayLike<number | bigint>)).toEqual(CASES[type].values);
    });

    it('writes numeric values as a view on them, not a copy', () => {
      const values = Float64Array.of(1, 2, 3, 4);
      const raw = toRaw('float64', values);
      expect(raw.buffer).toBe(values.buffer);
      values[0] = -1;
      expect(raw.readDoubleLE(0)).toBe(-1);
    });

    it("writes a subarray's own bytes only, from its offset", () => {
      const whole = Int32Array.of(10, 20, 30, 40);
      const raw = toRaw('int32', whole.subarray(1, 3));
      expect(raw.byteOffset).toBe(4);
      expect(raw).toHaveLength(8);
      expect([raw.readInt32LE(0), raw.readInt32LE(4)]).toEqual([20, 30]);
    });
  });
});
