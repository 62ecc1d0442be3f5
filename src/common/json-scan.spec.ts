import { checkJsonCost, markScanned, wasScanned } from './json-scan';
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

  it('marks what it let through, so that nothing walks it again', () => {
    const body = { a: 1 };
    expect(wasScanned(body)).toBe(false);
    markScanned(body);
    expect(wasScanned(body)).toBe(true);
    expect(wasScanned({ a: 1 })).toBe(false);
  });
});
