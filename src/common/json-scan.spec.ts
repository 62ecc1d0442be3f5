import fc from 'fast-check';
import { checkJsonCost, JsonCostScan, markScanned, wasScanned } from './json-scan';
import { MAX_JSON_DEPTH } from './json-guard';

const LIMITS = { maxContainers: 10, maxArrayLength: 5, maxStringLength: 100 };
const scan = (text: string, limits = LIMITS) => checkJsonCost(Buffer.from(text), limits);

describe('checkJsonCost', () => {
  it('lets through bodies within every bound, whatever their strings hold', () => {
    expect(scan('{"instances":[{"features":[1,2,3,4,5]}]}')).toBeUndefined();
    // Brackets, braces, commas and colons inside strings (escaped quotes included) are text, not structure.
    expect(scan('{"a":"[[[[{{{{,,,,,,::::\\"[[[["}')).toBeUndefined();
    expect(
      scan(`${'['.repeat(MAX_JSON_DEPTH)}${']'.repeat(MAX_JSON_DEPTH)}`, { ...LIMITS, maxContainers: 100 }),
    ).toBeUndefined();
  });

  it('refuses one level past MAX_JSON_DEPTH with the path of the innermost container, before reading further', () => {
    const deep = `{"features":${'['.repeat(10_000)}`;
    const refused = scan(deep, { ...LIMITS, maxContainers: 100_000 });
    expect(refused).toMatchObject({
      code: 'INVALID_INPUT',
      details: [
        { path: `features${'[0]'.repeat(MAX_JSON_DEPTH - 1)}`, message: `nested deeper than ${MAX_JSON_DEPTH} levels` },
      ],
    });
    expect(scan('[1,[2,{"b":{"c":[[[', { ...LIMITS, maxContainers: 100 })).toBeUndefined();
  });

  it('names the array past MAX_ARRAY_LENGTH, by its key and index', () => {
    expect(scan('{"x":[[0],[1,2,3,4,5,6]]}')).toMatchObject({
      code: 'INVALID_INPUT',
      details: [{ path: 'x[1]', message: expect.stringMatching(/more than 5 elements.*MAX_ARRAY_LENGTH/) }],
    });
    expect(scan('[1,2,3,4,5,6]')).toMatchObject({ details: [{ path: 'body' }] });
  });

  it('refuses more arrays and objects, or more keys, than MAX_JSON_CONTAINERS with 413', () => {
    expect(scan(`[${Array(9).fill('[]').join(',')}]`, { ...LIMITS, maxArrayLength: 100 })).toBeUndefined();
    expect(scan(`[${Array(10).fill('{}').join(',')}]`, { ...LIMITS, maxArrayLength: 100 })).toMatchObject({
      code: 'PAYLOAD_TOO_LARGE',
      message: expect.stringMatching(/more than 10 arrays and objects \(MAX_JSON_CONTAINERS\)/),
    });
    const keys = `{${Array.from({ length: 11 }, (_, i) => `"k${i}":0`).join(',')}}`;
    expect(scan(keys)).toMatchObject({ code: 'PAYLOAD_TOO_LARGE', message: expect.stringMatching(/object keys/) });
  });

  it('refuses more array elements and object members than the route takes (maxElements) with 413 and its reason', () => {
    const budget = {
      ...LIMITS,
      maxContainers: 100,
      maxArrayLength: 100,
      maxElements: 6,
      elementsReason: 'model m takes 3',
    };
    expect(scan('{"instances":[[1,2,3],[4,5,6],[7]]}', budget)).toBeUndefined();
    expect(scan('{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7}', budget)).toBeUndefined();
    expect(scan('{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7,"h":8}', budget)).toMatchObject({
      code: 'PAYLOAD_TOO_LARGE',
    });
    expect(scan('{"instances":[[1,2,3],[4,5,6],[7,8]]}', budget)).toMatchObject({
      code: 'PAYLOAD_TOO_LARGE',
      message: expect.stringMatching(/more than 6 values .*, more than this route can take: model m takes 3;/),
    });
    // Counted across chunks, and refused in the chunk that passes the budget.
    const stream = new JsonCostScan(budget);
    expect(stream.feed(Buffer.from('{"features":[1,2,3,'))).toBeUndefined();
    expect(stream.feed(Buffer.from('4,5,6,'))).toBeUndefined();
    expect(stream.feed(Buffer.from('7,8'))).toMatchObject({ code: 'PAYLOAD_TOO_LARGE' });
  });

  it('bounds a hostile key named in a path', () => {
    const key = 'k'.repeat(1000);
    const refused = scan(`{"${key}":[1,2,3,4,5,6]}`, { ...LIMITS, maxStringLength: 2000 });
    expect(refused?.details[0].path).toBe('k'.repeat(64));
  });

  it('refuses strings and keys past MAX_STRING_LENGTH in characters, not bytes', () => {
    const scan8 = (text: string) => scan(text, { ...LIMITS, maxStringLength: 8 });
    expect(scan8('{"a":["12345678"]}')).toBeUndefined();
    // Escapes and multi-byte characters are longer in bytes than in characters.
    expect(scan8('{"a":"\\u0041\\u0041\\u0041\\u0041\\u0041"}')).toBeUndefined();
    expect(scan8('{"a":"ééééééé"}')).toBeUndefined();
    expect(scan8('{"a":[1,"123456789"]}')).toMatchObject({
      code: 'INVALID_INPUT',
      details: [{ path: 'a[1]', message: 'a string of 9 characters; the limit is 8 (MAX_STRING_LENGTH)' }],
    });
    expect(scan8('{"x":{"123456789":1}}')).toMatchObject({
      details: [{ path: 'x', message: 'a key of 9 characters; the limit is 8 (MAX_STRING_LENGTH)' }],
    });
  });

  it('refuses prototype keys, spelled plainly or with escapes', () => {
    const limits = { ...LIMITS, maxStringLength: 100 };
    expect(scan('{"a":{"__proto__":{}}}', limits)).toMatchObject({
      details: [{ path: 'a.__proto__', message: 'this key is not allowed' }],
    });
    expect(scan('{"constructor":1}', limits)).toMatchObject({ details: [{ path: 'constructor' }] });
    expect(scan('{"\\u0070rototype":1}', limits)).toMatchObject({
      details: [{ path: 'prototype', message: 'this key is not allowed' }],
    });
    // As a value, or a key that only looks alike, it is text.
    expect(scan('{"a":"__proto__","prototypes":1,"__proto_x":2}', limits)).toBeUndefined();
  });

  it('counts characters past U+FFFF as two, as JavaScript strings do', () => {
    const scan4 = (text: string) => scan(text, { ...LIMITS, maxStringLength: 4 });
    expect(scan4('{"a":"😀😀"}')).toBeUndefined();
    expect(scan4('{"a":"😀😀x"}')).toMatchObject({ details: [{ message: expect.stringMatching(/of 5 characters/) }] });
    expect(scan4('{"a":"\\ud83d\\ude00\\ud83d\\ude00"}')).toBeUndefined();
  });

  it('refuses a string past the limit within the chunk that passes it, before the string ends', () => {
    const scanner = new JsonCostScan({ ...LIMITS, maxStringLength: 8 });
    expect(scanner.feed(Buffer.from('{"a":"12345'))).toBeUndefined();
    expect(scanner.feed(Buffer.from('6789'))).toMatchObject({
      details: [{ path: 'a', message: 'a string of more than 8 characters; the limit is 8 (MAX_STRING_LENGTH)' }],
    });
  });

  it('finds a prototype key, and names the path, when a key is split between two chunks', () => {
    const limits = { ...LIMITS, maxStringLength: 100 };
    // The last is let through: a value that spells a prototype key is text, wherever the cut falls.
    for (const body of [
      '{"a":{"__proto__":{}}}',
      '{"\\u0070rototype":1}',
      '{"ke\\"y":[1,2,3,4,5,6]}',
      '{"k":"__proto__"}',
    ]) {
      const whole = checkJsonCost(Buffer.from(body), limits);
      expect(whole === undefined).toBe(body.startsWith('{"k"'));
      for (let cut = 0; cut <= body.length; cut++) {
        const scanner = new JsonCostScan(limits);
        const verdict = scanner.feed(Buffer.from(body.slice(0, cut))) ?? scanner.feed(Buffer.from(body.slice(cut)));
        expect(verdict?.details).toEqual(whole?.details);
      }
    }
  });

  it('reaches the same verdict whichever chunks the body arrives in', () => {
    // Small alphabets, so that structure, escapes, multi-byte text and every limit turn up often.
    const text = fc
      .array(
        fc.constantFrom(
          '[',
          ']',
          '{',
          '}',
          ',',
          ':',
          '"',
          '\\',
          '\\u0041',
          '\\"',
          'é',
          '😀',
          'a',
          '1',
          '__proto__',
          '"k":',
        ),
        { maxLength: 60 },
      )
      .map((parts) => parts.join(''));
    fc.assert(
      fc.property(text, fc.array(fc.nat(), { maxLength: 6 }), (body, cuts) => {
        const bytes = Buffer.from(body);
        const limits = { maxContainers: 12, maxArrayLength: 4, maxStringLength: 6 };
        const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
        const scanner = new JsonCostScan(limits);
        let verdict;
        let from = 0;
        for (const to of [...points, bytes.length]) {
          verdict = scanner.feed(bytes.subarray(from, to));
          if (verdict) break;
          from = to;
        }
        const whole = checkJsonCost(bytes, limits);
        // A string refused in a chunk before it ends has no exact length yet; everything else is the same.
        const same = (e: typeof whole) => e && { code: e.code, path: e.details[0]?.path, message: e.message };
        expect(same(verdict)).toEqual(same(whole));
        if (whole?.details[0] && !/MAX_STRING_LENGTH/.test(whole.details[0].message)) {
          expect(verdict?.details).toEqual(whole.details);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('marks what it let through, so that nothing walks it again', () => {
    const body = { a: 1 };
    expect(wasScanned(body)).toBe(false);
    markScanned(body);
    expect(wasScanned(body)).toBe(true);
    expect(wasScanned({ a: 1 })).toBe(false);
  });
});
