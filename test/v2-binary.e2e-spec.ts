import { INestApplication } from '@nestjs/common';
import { gzipSync } from 'node:zlib';
import { bundled, fixture, makeRepository, startApp } from './support/app';
import { listen } from './support/http';
import {
  ClientInput,
  decodeRaw,
  encodeRaw,
  frameRequest,
  infer,
  parseAnswer,
  send,
  Values,
} from './support/triton-client';
import { TYPE_CASES } from './support/type-cases';

/**
 * The Open Inference Protocol as Triton's own HTTP client speaks it (framed by test/support/triton-client.ts):
 * bodies without Content-Type, the binary tensor data extension in and out for every element type,
 * mixed JSON and binary, every malformed framing, and compressed requests and answers. On both
 * adapters, since the body is read at the HTTP edge (src/http/v2-body.ts) before either parser.
 */

const SETOSA = [5.1, 3.5, 1.4, 0.2];
const VIRGINICA = [6.3, 3.3, 6.0, 2.5];

/** The JSON form of an expected value, as the binary decoder gives it: 64-bit integers as bigints. */
const asDecoded = (datatype: string, v: number | string | boolean) =>
  datatype === 'INT64' || datatype === 'UINT64' ? BigInt(v) : v;

const typeInputs = (json = false): ClientInput[] =>
  TYPE_CASES.map((c) => ({
    name: `${c.name}_in`,
    datatype: c.datatype,
    shape: [2, 2],
    values: c.datatype === 'INT64' || c.datatype === 'UINT64' ? c.data.map((v) => BigInt(v)) : c.data,
    json,
  }));

describe('Open Inference Protocol (V2): Triton client framing, binary tensors and compression', () => {
  let app: INestApplication;
  let port: number;

  beforeAll(async () => {
    const dir = await makeRepository({
      iris: bundled('iris'),
      multi_input: fixture('multi_input'),
      types: fixture('types'),
      fp16: fixture('fp16'),
      image: fixture('image'),
    });
    app = await startApp({ MODEL_REPOSITORY: dir });
    port = await listen(app);
  });
  afterAll(() => app.close());

  const post = (path: string, body: Buffer | string, headers: Record<string, string> = {}) =>
    send(port, path, Buffer.from(body), { 'Content-Length': String(Buffer.byteLength(body)), ...headers });
  const errorOf = (res: { body: Buffer }) => JSON.parse(res.body.toString('utf8')) as { error: string };

  const irisJson = JSON.stringify({
    inputs: [{ name: 'float_input', shape: [2, 4], datatype: 'FP32', data: [...SETOSA, ...VIRGINICA] }],
  });

  describe('media types', () => {
    it.each([
      ['no Content-Type (what tritonclient sends)', undefined],
      ['application/octet-stream', 'application/octet-stream'],
      ['application/json; charset=utf-8', 'application/json; charset=utf-8'],
      ['application/json;charset=UTF-8', 'application/json;charset=UTF-8'],
    ])('reads a JSON body with %s', async (_, type) => {
      const res = await post('/v2/models/iris/infer', irisJson, type ? { 'Content-Type': type } : {});
      expect(res.status).toBe(200);
      expect(res.headers['content-type']).toMatch(/^application\/json/);
      const body = JSON.parse(res.body.toString());
      expect(body.outputs.find((o: { name: string }) => o.name === 'output_label').data).toEqual([0, 2]);
    });

    it('still refuses text/plain and another charset on /v2 with 415', async () => {
      for (const type of ['text/plain', 'application/json; charset=latin1']) {
        const res = await post('/v2/models/iris/infer', irisJson, { 'Content-Type': type });
        expect(res.status).toBe(415);
        expect(Object.keys(errorOf(res))).toEqual(['error']);
      }
    });

    it('keeps the JSON body policy off /v2: no Content-Type on v1 is still 415', async () => {
      const res = await post('/v1/models/iris/predict', JSON.stringify({ features: SETOSA }));
      expect(res.status).toBe(415);
    });
  });

  describe('binary tensors', () => {
    it('iris: binary in, every output binary (binary_data_output), answered as octet-stream', async () => {
      const answer = await infer(port, 'iris', [
        { name: 'float_input', datatype: 'FP32', shape: [2, 4], values: [...SETOSA, ...VIRGINICA] },
      ]);
      expect(answer.status).toBe(200);
      expect(answer.headers['content-type']).toMatch(/^application\/octet-stream/);
      expect(Number(answer.headers['inference-header-content-length'])).toBeGreaterThan(0);
      expect(answer.json).toMatchObject({ model_name: 'iris', model_version: '1' });
      expect(answer.outputs.output_label).toEqual({
        datatype: 'INT64',
        shape: [2],
        values: [0n, 2n],
        binary: true,
      });
      const p = answer.outputs.output_probability;
      expect(p.shape).toEqual([2, 3]);
      expect(p.binary).toBe(true);
      // The same probabilities as the JSON answer, to the bit (float32 both ways).
      const json = JSON.parse((await post('/v2/models/iris/infer', irisJson)).body.toString());
      expect(p.values).toEqual(json.outputs.find((o: { name: string }) => o.name === 'output_probability').data);
    });

    it('binary in, JSON out when the outputs ask for binary_data false', async () => {
      const answer = await infer(
        port,
        'iris',
        [{ name: 'float_input', datatype: 'FP32', shape: [1, 4], values: SETOSA }],
        { outputs: [{ name: 'output_label', binary: false }] },
      );
      expect(answer.status).toBe(200);
      expect(answer.headers['content-type']).toMatch(/^application\/json/);
      expect(answer.headers['inference-header-content-length']).toBeUndefined();
      expect(answer.json.outputs).toEqual([{ name: 'output_label', datatype: 'INT64', shape: [1], data: [0] }]);
    });

    it('mixed: one input binary and one JSON, one output binary and one JSON (multi_input)', async () => {
      const answer = await infer(
        port,
        'multi_input',
        [
          { name: 'a', datatype: 'FP32', shape: [2, 2], values: [1.5, 2, 0, -1] },
          { name: 'b', datatype: 'INT64', shape: [2, 3], values: [1, 5, 3, -7, -2, -9], json: true },
        ],
        {
          outputs: [
            { name: 'b_max', binary: true },
            { name: 'total', binary: false },
          ],
        },
      );
      expect(answer.status).toBe(200);
      expect(answer.json.outputs).toEqual([
        { name: 'b_max', datatype: 'INT64', shape: [2], parameters: { binary_data_size: 16 } },
        { name: 'total', datatype: 'FP32', shape: [2, 1], data: [12.5, -19] },
      ]);
      expect(answer.outputs.b_max.values).toEqual([5n, -2n]);
    });

    it('every element type of the types fixture round-trips in binary, in and out', async () => {
      const answer = await infer(port, 'types', typeInputs());
      expect(answer.status).toBe(200);
      for (const c of TYPE_CASES) {
        const out = answer.outputs[`${c.name}_out`];
        expect({ name: c.name, ...out }).toEqual({
          name: c.name,
          datatype: c.datatype,
          shape: [2, 2],
          values: c.expected.map((v) => asDecoded(c.datatype, v)),
          binary: true,
        });
      }
    });

    it('every element type: the binary answer to binary input equals the JSON answer to JSON input', async () => {
      const binary = await infer(port, 'types', typeInputs(), {
        outputs: TYPE_CASES.map((c) => ({ name: `${c.name}_out`, binary: false })),
      });
      const json = await infer(port, 'types', typeInputs(true), {
        outputs: TYPE_CASES.map((c) => ({ name: `${c.name}_out`, binary: false })),
      });
      expect(binary.status).toBe(200);
      expect(binary.json.outputs).toEqual(json.json.outputs);
    });

    it('BYTES: empty strings, multi-byte UTF-8 and a long string, in and out', async () => {
      const strings = ['', '日本語 ✓', 'x'.repeat(70000), '😀'];
      const inputs = typeInputs().map((i) => (i.name === 'str_in' ? { ...i, values: strings } : i));
      const answer = await infer(port, 'types', inputs, { outputs: [{ name: 'str_out' }] });
      expect(answer.status).toBe(200);
      expect(answer.outputs.str_out.values).toEqual(strings);
      // 4 length bytes per element, then its UTF-8.
      const size = strings.reduce((n, s) => n + 4 + Buffer.byteLength(s), 0);
      expect(answer.json.outputs).toEqual([
        { name: 'str_out', datatype: 'BYTES', shape: [2, 2], parameters: { binary_data_size: size } },
      ]);
    });

    it('FP16 in binary: the half bits in, the half bits out', async () => {
      const answer = await infer(port, 'fp16', [
        { name: 'f16_in', datatype: 'FP16', shape: [3, 2], values: [1, 2, -1, 0, 0.5, 1000] },
      ]);
      expect(answer.status).toBe(200);
      expect(answer.outputs.f16_out.values).toEqual([3, 5, -1, 1, 2, 2001]);
    });

    it('an image-sized input (1x3x224x224 FP32, 602112 bytes) in binary: features[k] = (k + 1) * mean', async () => {
      const values = Array.from({ length: 3 * 224 * 224 }, (_, i) => (i % 7) / 7);
      const mean = values.reduce((a, b) => a + b, 0) / values.length;
      const answer = await infer(port, 'image', [{ name: 'image', datatype: 'FP32', shape: [1, 3, 224, 224], values }]);
      expect(answer.status).toBe(200);
      const features = answer.outputs.features.values as number[];
      expect(features).toHaveLength(4);
      features.forEach((f, k) => expect(f).toBeCloseTo((k + 1) * mean, 4));
    });

    it('the classification extension answers its BYTES in binary when asked', async () => {
      const answer = await infer(
        port,
        'iris',
        [{ name: 'float_input', datatype: 'FP32', shape: [1, 4], values: SETOSA }],
        {
          outputs: [{ name: 'output_probability', classification: 1 }],
        },
      );
      expect(answer.status).toBe(200);
      expect(answer.outputs.output_probability.datatype).toBe('BYTES');
      expect(answer.outputs.output_probability.values).toEqual([expect.stringMatching(/^0\.\d{6}:0:setosa$/)]);
    });
  });

  describe('malformed binary framing: 400 naming what is wrong', () => {
    const iris = (values: Values = SETOSA): ClientInput => ({
      name: 'float_input',
      datatype: 'FP32',
      shape: [1, 4],
      values,
    });

    /** A framed request with its JSON header rewritten by `edit`, the header length kept true to it. */
    const edited = (edit: (header: Record<string, unknown>) => void, tail: Buffer = encodeRaw('FP32', SETOSA)) => {
      const { body, headerLength } = frameRequest([iris()]);
      const header = JSON.parse(body.subarray(0, headerLength).toString()) as Record<string, unknown>;
      edit(header);
      const json = Buffer.from(JSON.stringify(header));
      return {
        body: Buffer.concat([json, tail]),
        headers: { 'Inference-Header-Content-Length': String(json.length) },
      };
    };
    const input0 = (h: Record<string, unknown>) => (h.inputs as Record<string, unknown>[])[0];

    it.each([
      [
        'binary_data_size one element short of the shape',
        () => edited((h) => (input0(h).parameters = { binary_data_size: 12 }), encodeRaw('FP32', SETOSA.slice(0, 3))),
        /Input 'float_input': binary_data_size 12 does not fit shape \[1, 4\] of FP32; .*4 FP32 elements take 16 bytes/,
      ],
      [
        'binary_data_size past the end of the body',
        () => edited((h) => (input0(h).parameters = { binary_data_size: 32 })),
        /Input 'float_input' has binary_data_size 32, but only 16 bytes of binary data follow/,
      ],
      [
        'bytes left over after every input',
        () => edited(() => undefined, Buffer.concat([encodeRaw('FP32', SETOSA), Buffer.from([1, 2, 3])])),
        /3 bytes are left over/,
      ],
      [
        'a binary_data_size that is not a count',
        () => edited((h) => (input0(h).parameters = { binary_data_size: -4 })),
        /Input 'float_input': binary_data_size must be a byte count/,
      ],
      [
        'both data and binary_data_size',
        () => edited((h) => (input0(h).data = SETOSA)),
        /Input 'float_input' has both data and parameters.binary_data_size/,
      ],
      [
        'neither data nor binary_data_size',
        () => edited((h) => delete input0(h).parameters, Buffer.alloc(0)),
        /Input 'float_input' has neither data nor parameters.binary_data_size/,
      ],
      [
        'the datatype BF16, which onnxruntime-node cannot take',
        () => edited((h) => (input0(h).datatype = 'BF16'), Buffer.alloc(8)),
        /BF16 tensors are not supported: onnxruntime-node cannot create bfloat16 tensors/,
      ],
    ])('%s', async (_, make, message) => {
      const { body, headers } = make();
      const res = await send(port, '/v2/models/iris/infer', body, {
        ...headers,
        'Content-Length': String(body.length),
      });
      expect(res.status).toBe(400);
      expect(errorOf(res)).toEqual({ error: expect.stringMatching(message) });
    });

    it.each([
      [
        'past the body',
        (n: number) => String(n + 100),
        /Inference-Header-Content-Length is \d+, past the end of the \d+-byte body/,
      ],
      ['not a number', () => 'abc', /Inference-Header-Content-Length must be a byte count/],
      ['cutting the JSON short', (n: number) => String(n - 5), /not valid JSON/],
    ])('Inference-Header-Content-Length %s', async (_, length, message) => {
      const { body, headers, headerLength } = frameRequest([iris()]);
      const res = await send(port, '/v2/models/iris/infer', body, {
        ...headers,
        'Inference-Header-Content-Length': length(headerLength),
      });
      expect(res.status).toBe(400);
      expect(errorOf(res).error).toMatch(message);
    });

    const typesWith = (name: string, tail: Buffer, size = tail.length) => {
      const inputs = typeInputs();
      const { body, headerLength } = frameRequest(inputs);
      const header = JSON.parse(body.subarray(0, headerLength).toString()) as { inputs: Record<string, unknown>[] };
      const tails = inputs.map((i) => (i.name === name ? tail : encodeRaw(i.datatype, i.values)));
      header.inputs.find((i) => i.name === name)!.parameters = { binary_data_size: size };
      const json = Buffer.from(JSON.stringify(header));
      return {
        body: Buffer.concat([json, ...tails]),
        headers: { 'Inference-Header-Content-Length': String(json.length) },
      };
    };

    it.each([
      [
        'a BYTES element whose length runs past the data',
        Buffer.from([20, 0, 0, 0, 97, 98, 99, 100, 0, 0, 0, 0, 0, 0, 0, 0]),
        /Input 'str_in'.*BYTES element 0 claims 20 bytes; only 12 remain/,
      ],
      [
        'BYTES data with bytes after the last element',
        Buffer.concat([encodeRaw('BYTES', ['a', 'b', 'c', 'd']), Buffer.from([0])]),
        /Input 'str_in'.*4 BYTES elements end at byte 20; 1 bytes are left over/,
      ],
      [
        'BYTES data too short for the element count',
        encodeRaw('BYTES', ['a', 'b']),
        /Input 'str_in'.*4 BYTES elements take at least 16 bytes \(a 4-byte length each\); got 10/,
      ],
      ['a BOOL byte that is neither 0 nor 1', Buffer.from([1, 0, 2, 1]), /Input 'bool_in'.*element 2 is 2/],
      [
        'INT64 data the size of INT32 data',
        encodeRaw('INT32', [1, 2, 3, 4]),
        /Input 'i64_in': binary_data_size 16 does not fit shape \[2, 2\] of INT64; .*4 INT64 elements take 32 bytes/,
      ],
    ])('%s', async (_, tail, message) => {
      const name = String(message).includes('str_in')
        ? 'str_in'
        : String(message).includes('bool_in')
          ? 'bool_in'
          : 'i64_in';
      const { body, headers } = typesWith(name, tail);
      const res = await send(port, '/v2/models/types/infer', body, {
        ...headers,
        'Content-Length': String(body.length),
      });
      expect(res.status).toBe(400);
      expect(errorOf(res).error).toMatch(message);
    });

    it('a binary input of the wrong datatype for the model is refused as JSON would be', async () => {
      const answer = await infer(port, 'iris', [
        { name: 'float_input', datatype: 'FP64', shape: [1, 4], values: SETOSA },
      ]);
      expect(answer.status).toBe(400);
      expect(answer.json).toEqual({ error: expect.stringMatching(/input 'float_input' holds float32, not float64/) });
    });

    it('a binary input of the wrong shape for the model is refused as JSON would be', async () => {
      const answer = await infer(port, 'iris', [
        { name: 'float_input', datatype: 'FP32', shape: [1, 3], values: SETOSA.slice(0, 3) },
      ]);
      expect(answer.status).toBe(400);
      expect(answer.json).toEqual({
        error: expect.stringMatching(/input 'float_input' has shape \[\*, 4\]; got \[1, 3\]/),
      });
    });
  });

  describe('compression', () => {
    const irisBinary = [{ name: 'float_input', datatype: 'FP32', shape: [2, 4], values: [...SETOSA, ...VIRGINICA] }];

    it.each(['gzip', 'deflate'] as const)('reads a %s request, binary and JSON alike', async (compress) => {
      const answer = await infer(port, 'iris', irisBinary, { compress });
      expect(answer.status).toBe(200);
      expect(answer.outputs.output_label.values).toEqual([0n, 2n]);
      const { deflateSync } = await import('node:zlib');
      const json = compress === 'gzip' ? gzipSync(irisJson) : deflateSync(irisJson);
      const res = await post('/v2/models/iris/infer', json, {
        'Content-Encoding': compress,
        'Content-Type': 'application/json',
      });
      expect(res.status).toBe(200);
    });

    it.each(['gzip', 'deflate'] as const)(
      'answers %s when Accept-Encoding asks, binary and JSON alike',
      async (encoding) => {
        const answer = await infer(port, 'iris', irisBinary, { acceptEncoding: encoding });
        expect(answer.status).toBe(200);
        expect(answer.headers['content-encoding']).toBe(encoding);
        expect(answer.headers['content-type']).toMatch(/^application\/octet-stream/);
        expect(answer.outputs.output_label.values).toEqual([0n, 2n]);
        const json = await infer(port, 'iris', irisBinary, {
          acceptEncoding: `${encoding}, identity;q=0.5`,
          outputs: [{ name: 'output_label', binary: false }],
        });
        expect(json.headers['content-encoding']).toBe(encoding);
        expect(json.headers['content-type']).toMatch(/^application\/json/);
        expect(json.json.outputs).toEqual([{ name: 'output_label', datatype: 'INT64', shape: [2], data: [0, 2] }]);
      },
    );

    it('answers uncompressed without Accept-Encoding, or with identity only', async () => {
      for (const acceptEncoding of [undefined, 'identity', 'gzip;q=0']) {
        const answer = await infer(port, 'iris', irisBinary, { acceptEncoding });
        expect(answer.headers['content-encoding']).toBeUndefined();
      }
    });

    it('a gzip bomb (small on the wire, past BODY_LIMIT inflated) is 413, never memory', async () => {
      const bomb = gzipSync(Buffer.alloc(64 * 1024 * 1024, 0x20));
      expect(bomb.length).toBeLessThan(1024 * 1024);
      const res = await post('/v2/models/iris/infer', bomb, { 'Content-Encoding': 'gzip' });
      expect(res.status).toBe(413);
      expect(errorOf(res).error).toMatch(/decompressed body is larger than the limit of 1048576 bytes/);
    });

    it('a body that is not the gzip it claims is 400; an unknown Content-Encoding 415', async () => {
      const bad = await post('/v2/models/iris/infer', irisJson, { 'Content-Encoding': 'gzip' });
      expect(bad.status).toBe(400);
      expect(errorOf(bad).error).toMatch(/not valid gzip data/);
      const br = await post('/v2/models/iris/infer', irisJson, { 'Content-Encoding': 'br' });
      expect(br.status).toBe(415);
    });
  });

  describe('X-Cache', () => {
    it('never answers an error with X-Cache, even when the rows came from the cache', async () => {
      const body = JSON.stringify({
        inputs: [{ name: 'float_input', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }],
        outputs: [{ name: 'no_such_output' }],
      });
      for (let i = 0; i < 2; i++) {
        const res = await post('/v2/models/iris/infer', body);
        expect(res.status).toBe(400);
        expect(res.headers['x-cache']).toBeUndefined();
      }
      // The rows are cached: the same input with a real output is a hit.
      const ok = await post('/v2/models/iris/infer', body.replace('no_such_output', 'output_label'));
      expect(ok.headers['x-cache']).toBe('HIT');
    });
  });

  it('decodes its own encoding (the helper is checked too)', () => {
    expect(decodeRaw('INT64', encodeRaw('INT64', [-1n, 2n ** 62n]))).toEqual([-1n, 2n ** 62n]);
    expect(decodeRaw('FP16', encodeRaw('FP16', [0.5, -2, 1000]))).toEqual([0.5, -2, 1000]);
    expect(parseAnswer(200, {}, Buffer.from('{"outputs":[]}')).outputs).toEqual({});
  });
});
