/**
 * One [2, 2] tensor per input of the `types` fixture, each with its output by the formulas of
 * test/fixtures/README.md, computed here independently of the service. Shared by the JSON and the
 * binary conformance suites, so both forms are held to the same answers.
 */

const f32 = Math.fround;
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
/** How the service answers an integer: a JSON number up to 2^53 − 1, a decimal string beyond. */
export const asJson = (v: bigint): number | string => (v >= -MAX_SAFE && v <= MAX_SAFE ? Number(v) : v.toString());

export interface TypeCase {
  /** Prefix of the fixture's tensors: `<name>_in` → `<name>_out`. */
  readonly name: string;
  readonly datatype: string;
  readonly data: readonly (number | string | boolean)[];
  readonly expected: readonly (number | string | boolean)[];
}

/** An integer case: `op` on exact integers, wrapped to the type's width as onnxruntime does. */
const intCase = (name: string, datatype: string, data: (number | string)[], op: (v: bigint) => bigint): TypeCase => ({
  name,
  datatype,
  data,
  expected: data.map((v) => asJson(op(BigInt(v)))),
});

/** One [2, 2] tensor per input of the `types` fixture, and its output by the README's formula. */
export const TYPE_CASES: readonly TypeCase[] = [
  {
    name: 'f32',
    datatype: 'FP32',
    data: [1.5, -2, 0.1, 1000],
    expected: [1.5, -2, 0.1, 1000].map((x) => f32(f32(f32(x) * 2) + 1)),
  },
  { name: 'f64', datatype: 'FP64', data: [0.1, -2.5, 1e300, 3], expected: [0.1, -2.5, 1e300, 3].map((x) => x * 2 + 1) },
  intCase('i8', 'INT8', [1, -2, 127, -127], (v) => BigInt.asIntN(8, -v)),
  intCase('i16', 'INT16', [300, -300, 32767, -32768], (v) => BigInt.asIntN(16, -v)),
  intCase('i32', 'INT32', [0, -1, 2147483646, -2147483648], (v) => BigInt.asIntN(32, v + 1n)),
  // int64: small values as numbers or decimal strings, 2^62 and -2^63 as decimal strings.
  intCase('i64', 'INT64', [0, '-1', '4611686018427387904', '-9223372036854775808'], (v) => BigInt.asIntN(64, v + 1n)),
  intCase('u8', 'UINT8', [0, 1, 100, 200], (v) => BigInt.asUintN(8, v << 1n)),
  intCase('u16', 'UINT16', [0, 1, 65534, 65535], (v) => BigInt.asUintN(16, v + 1n)),
  intCase('u32', 'UINT32', [0, 1, 4294967294, 4294967295], (v) => BigInt.asUintN(32, v + 1n)),
  // uint64: 2^53 and the top of the range as decimal strings.
  intCase('u64', 'UINT64', [7, '9007199254740992', '18446744073709551614', '18446744073709551615'], (v) =>
    BigInt.asUintN(64, v + 1n),
  ),
  { name: 'bool', datatype: 'BOOL', data: [true, false, false, true], expected: [false, true, true, false] },
  { name: 'str', datatype: 'BYTES', data: ['a', '', 'héllo', '✓ 1'], expected: ['a', '', 'héllo', '✓ 1'] },
];
