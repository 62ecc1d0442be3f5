import { findJsonHazard, JsonLimits, MAX_JSON_DEPTH } from './json-guard';

// Small limits, so that bodies just over them stay small; the guard takes whatever it is given.
const LIMITS: JsonLimits = { maxArrayLength: 4, maxStringLength: 16 };
/** A string (or key) one character over LIMITS.maxStringLength. */
const LONG = 'abcdefghijklmnopq';
const hazardOf = (json: string, limits = LIMITS) => findJsonHazard(JSON.parse(json), limits);

/** `levels` arrays, one inside the other, around `inner`. */
const nestedArrays = (levels: number, inner = '1') => '['.repeat(levels) + inner + ']'.repeat(levels);
/** `levels` objects, each the value of key `a` of the one around it, around `inner`. */
const nestedObjects = (levels: number, inner = '1') => '{"a":'.repeat(levels) + inner + '}'.repeat(levels);

const DEPTH = { message: `nested deeper than ${MAX_JSON_DEPTH} levels` };
const FORBIDDEN = 'this key is not allowed';

describe('findJsonHazard', () => {
  it.each([
    ['an ordinary v1 body', '{"instances":[[5.1,3.5,1.4,0.2],[6.2,2.9,4.3,1.3]]}'],
    ['named features', '{"instances":[{"sepal_len":5.1,"petal_w":0.2}]}'],
    ['a V2 body', '{"inputs":[{"name":"x","datatype":"FP32","shape":[1,4],"data":[1,2,3,4]}]}'],
    ['empty containers', '{"a":[],"b":{},"c":[{}]}'],
    ['null, booleans and numbers', '[null,true,false,-0.5]'],
    ['a top-level number', '42'],
    ['a top-level null', 'null'],
    ['an array of exactly maxArrayLength elements', '[1,2,3,4]'],
    ['a string of exactly maxStringLength characters', `["${LONG.slice(1)}"]`],
    ['a key of exactly maxStringLength characters', `{"${LONG.slice(1)}":1}`],
    ['prototype words as values', '{"name":"__proto__","kind":["constructor","prototype"]}'],
    ['keys that only contain a prototype word', '{"__proto__x":1,"my_constructor":2,"prototypes":3}'],
  ])('accepts %s', (_, json) => {
    expect(hazardOf(json)).toBeUndefined();
  });

  describe('depth', () => {
    it(`accepts ${MAX_JSON_DEPTH} levels of nesting and refuses one more, at the innermost container`, () => {
      expect(hazardOf(nestedArrays(MAX_JSON_DEPTH))).toBeUndefined();
      expect(hazardOf(nestedObjects(MAX_JSON_DEPTH))).toBeUndefined();
      expect(hazardOf(nestedArrays(MAX_JSON_DEPTH + 1))).toEqual({ ...DEPTH, path: '[0]'.repeat(MAX_JSON_DEPTH) });
      expect(hazardOf(nestedObjects(MAX_JSON_DEPTH + 1))).toEqual({
        ...DEPTH,
        path: Array<string>(MAX_JSON_DEPTH).fill('a').join('.'),
      });
    });

    it('counts only containers: a string at the deepest allowed level is fine', () => {
      expect(hazardOf(nestedArrays(MAX_JSON_DEPTH, '"x"'))).toBeUndefined();
      expect(hazardOf(nestedArrays(MAX_JSON_DEPTH, '{}'))).toEqual({ ...DEPTH, path: '[0]'.repeat(MAX_JSON_DEPTH) });
    });

    it('reports the path through objects and arrays alike', () => {
      const body = `{"inputs":[{"name":"x"},{"data":${nestedArrays(MAX_JSON_DEPTH - 2)}}]}`;
      expect(hazardOf(body)).toEqual({ ...DEPTH, path: 'inputs[1].data' + '[0]'.repeat(MAX_JSON_DEPTH - 3) });
    });

    it('walks a hostile depth without recursion: 100 000 nested arrays or objects', () => {
      const arrays = findJsonHazard(JSON.parse(nestedArrays(100_000)), LIMITS);
      expect(arrays).toEqual({ ...DEPTH, path: '[0]'.repeat(MAX_JSON_DEPTH) });
      const objects = findJsonHazard(JSON.parse(nestedObjects(100_000)), LIMITS);
      expect(objects?.path.split('.')).toHaveLength(MAX_JSON_DEPTH);
    });

    it('walks a million levels built in memory, deeper than any call stack', () => {
      let body: unknown = 'leaf';
      for (let i = 0; i < 1_000_000; i++) body = { next: body };
      expect(findJsonHazard(body, LIMITS)).toEqual({
        ...DEPTH,
        path: Array<string>(MAX_JSON_DEPTH).fill('next').join('.'),
      });
    });
  });

  describe('prototype keys', () => {
    it.each(['__proto__', 'constructor', 'prototype'])('refuses %s wherever it is, naming the key', (key) => {
      expect(hazardOf(`{"${key}":{"polluted":true}}`)).toEqual({ path: key, message: FORBIDDEN });
      expect(hazardOf(`{"a":{"b":{"${key}":1}}}`)).toEqual({ path: `a.b.${key}`, message: FORBIDDEN });
      expect(hazardOf(`[1,{"ok":2,"${key}":3}]`)).toEqual({ path: `[1].${key}`, message: FORBIDDEN });
      expect(hazardOf(`{"instances":[[1],[{"x":{"${key}":null}}]]}`)).toEqual({
        path: `instances[1][0].x.${key}`,
        message: FORBIDDEN,
      });
    });

    it('refuses a __proto__ key that JSON.parse made an own property, not a prototype', () => {
      const body: unknown = JSON.parse('{"__proto__":{"isAdmin":true}}');
      // The hazard: code that copies this body key by key would set the copy's prototype.
      expect(Object.keys(body as object)).toEqual(['__proto__']);
      expect(findJsonHazard(body, LIMITS)).toEqual({ path: '__proto__', message: FORBIDDEN });
    });
  });

  describe('arrays', () => {
    const message = 'an array of 5 elements; the limit is 4 (MAX_ARRAY_LENGTH)';

    it('refuses an array longer than maxArrayLength, with its path', () => {
      expect(hazardOf('[1,2,3,4,5]')).toEqual({ path: 'body', message });
      expect(hazardOf('{"instances":[1,2,3,4,5]}')).toEqual({ path: 'instances', message });
      expect(hazardOf('{"inputs":[{"data":[1]},{"data":[1,2,3,4,5]}]}')).toEqual({ path: 'inputs[1].data', message });
      expect(hazardOf('[[],[[1,2,3,4,5]]]')).toEqual({ path: '[1][0]', message });
    });

    it('reads the limit it is given', () => {
      expect(hazardOf('[1,2,3,4,5]', { ...LIMITS, maxArrayLength: 5 })).toBeUndefined();
      expect(hazardOf('[1,2]', { ...LIMITS, maxArrayLength: 1 })).toEqual({
        path: 'body',
        message: 'an array of 2 elements; the limit is 1 (MAX_ARRAY_LENGTH)',
      });
    });
  });

  describe('strings', () => {
    const message = 'a string of 17 characters; the limit is 16 (MAX_STRING_LENGTH)';

    it('refuses a string longer than maxStringLength, with its path', () => {
      expect(hazardOf(`"${LONG}"`)).toEqual({ path: 'body', message });
      expect(hazardOf(`{"label":"${LONG}"}`)).toEqual({ path: 'label', message });
      expect(hazardOf(`{"instances":[{"text":"short"},{"text":"${LONG}"}]}`)).toEqual({
        path: 'instances[1].text',
        message,
      });
      expect(hazardOf(`["a","b","${LONG}"]`)).toEqual({ path: '[2]', message });
    });

    it('refuses a key longer than maxStringLength, at the object that holds it', () => {
      const keyMessage = 'a key of 17 characters; the limit is 16 (MAX_STRING_LENGTH)';
      expect(hazardOf(`{"${LONG}":1}`)).toEqual({ path: 'body', message: keyMessage });
      expect(hazardOf(`{"instances":[{"ok":1},{"${LONG}":1}]}`)).toEqual({
        path: 'instances[1]',
        message: keyMessage,
      });
    });

    it('reads the limit it is given', () => {
      expect(hazardOf(`"${LONG}"`, { ...LIMITS, maxStringLength: 17 })).toBeUndefined();
      expect(hazardOf('{"ab":1}', { ...LIMITS, maxStringLength: 1 })).toEqual({
        path: 'body',
        message: 'a key of 2 characters; the limit is 1 (MAX_STRING_LENGTH)',
      });
    });
  });

  it('reports the shallowest hazard when a body has several (the walk is breadth first)', () => {
    const body = `{"a":[[["${LONG}"]]],"b":"${LONG}"}`;
    expect(hazardOf(body)).toEqual({
      path: 'b',
      message: 'a string of 17 characters; the limit is 16 (MAX_STRING_LENGTH)',
    });
    // Keys are checked as their object is reached, before any of its values.
    expect(hazardOf(`{"a":"${LONG}","constructor":1}`)).toEqual({ path: 'constructor', message: FORBIDDEN });
  });
});
