import { fromHalfBits, toHalfBits } from './float16';

describe('float16', () => {
  it.each([
    [0, 0x0000],
    [-0, 0x8000],
    [1, 0x3c00],
    [-2, 0xc000],
    [0.5, 0x3800],
    [65504, 0x7bff],
    [2 ** -24, 0x0001],
    [2 ** -14, 0x0400],
    [Infinity, 0x7c00],
    [1e6, 0x7c00],
  ])('encodes %p as 0x%s', (value, bits) => {
    expect(toHalfBits(value)).toBe(bits);
  });

  it('rounds to the nearest half, ties to even', () => {
    expect(fromHalfBits(toHalfBits(1 + 2 ** -11))).toBe(1); // halfway between 1 and 1+2^-10: even wins
    expect(fromHalfBits(toHalfBits(1 + 3 * 2 ** -11))).toBe(1 + 2 * 2 ** -10);
    expect(fromHalfBits(toHalfBits(0.1))).toBeCloseTo(0.0999755859375, 12);
  });

  it('round-trips every finite half exactly', () => {
    for (let bits = 0; bits < 0x10000; bits++) {
      if ((bits & 0x7c00) === 0x7c00) continue;
      const back = toHalfBits(fromHalfBits(bits));
      expect(back === bits || (bits === 0x8000 && back === 0x8000)).toBe(true);
    }
  });
});
