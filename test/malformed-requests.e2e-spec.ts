import { INestApplication } from '@nestjs/common';
import * as http from 'node:http';
import * as net from 'node:net';
import * as vm from 'node:vm';
import request from 'supertest';
import { startApp } from './support/app';
import { listen } from './support/http';
import { MAX_JSON_DEPTH } from '../src/common/json-guard';

/**
 * A sweep of malformed requests against the prediction routes of the bundled iris model, the
 * lesson's routes and the batch routes. Each must be answered with the expected 4xx (never a 500)
 * and the structured error body, naming the offending field where there is one.
 */

interface Case {
  readonly name: string;
  readonly method?: 'get' | 'post' | 'put' | 'delete';
  readonly url: string;
  /** Sent with supertest's JSON serialisation (Content-Type: application/json). */
  readonly json?: unknown;
  /** Sent as is, with `type` as Content-Type (application/json unless told). */
  readonly raw?: string | Buffer;
  readonly type?: string;
  readonly headers?: Record<string, string>;
  /** 'small' is the app started with BODY_LIMIT 10kb. */
  readonly app?: 'small';
  readonly status: number;
  /** The expected error code, or the codes that are all acceptable. */
  readonly code: string | readonly string[];
  /** The expected path of details[0]; when absent, details is only checked to be an array. */
  readonly path?: string;
}

const PREDICT = '/v1/models/iris/predict';
const BATCH = '/v1/models/iris/predict/batch';
const OK = [5.1, 3.5, 1.4, 0.2];
const NAMED = { sepal_length: 5.1, sepal_width: 3.5, petal_length: 1.4, petal_width: 0.2 };

const nested = (depth: number, inner: unknown = 1): unknown => {
  let v = inner;
  for (let i = 0; i < depth; i++) v = [v];
  return v;
};
/** A deeply nested array as JSON text (built as text: no recursion in the test itself). */
const deepArrayText = (depth: number) => `${'['.repeat(depth)}1${']'.repeat(depth)}`;
const deepObjectText = (depth: number) => `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
const DEEP = 10_000;

const CASES: Case[] = [
  // Wrong element types.
  {
    name: 'a string where a number belongs',
    url: PREDICT,
    json: { features: [5.1, 3.5, 'x', 0.2] },
    status: 400,
    code: 'INVALID_INPUT',
    path: 'features[2]',
  },
  {
    name: 'null where a number belongs',
    url: PREDICT,
    json: { features: [5.1, null, 1.4, 0.2] },
    status: 400,
    code: 'INVALID_INPUT',
    path: 'features[1]',
  },
  {
    name: 'a boolean where a number belongs',
    url: PREDICT,
    json: { features: [true, 3.5, 1.4, 0.2] },
    status: 400,
    code: 'INVALID_INPUT',
    path: 'features[0]',
  },
  {
    name: 'an object where a number belongs',
    url: PREDICT,
    json: { features: [5.1, 3.5, 1.4, { v: 1 }] },
    status: 400,
    code: 'INVALID_INPUT',
    path: 'features[3]',
  },
  {
    name: 'a numeric string where a number belongs',
    url: PREDICT,
    json: { features: [5.1, '3.5', 1.4, 0.2] },
    status: 400,
    code: 'INVALID_INPUT',
    path: 'features[1]',
  },
  {
    name: 'features as a string',
    url: PREDICT,
    json: { features: '5.1,3.5,1.4,0.2' },
    status: 400,
    code: 'INVALID_INPUT',
    path: 'features',
  },
  {
    name: 'features as a number',
    url: PREDICT,
    json: { features: 5.1 },
    status: 400,
    code: 'INVALID_INPUT',
    path: 'features',
  },
  {
    name: 'features null',
    url: PREDICT,
    json: { features: null },
    status: 400,
    code: 'INVALID_INPUT',
    path: 'features',
  },
  {
    name: 'inputs as an array',
    url: PREDICT,
    json: { inputs: [OK] },
    status: 400,
    code: 'INVALID_INPUT',
    path: 'inputs',
  },

  // Wrong counts and shapes.
  {
    name: '3 features',
    url: PREDICT,
    json: { features: [5.1, 3.5, 1.4] },
    status: 400,
    code: 'INVALID_INPUT',
    path: 'features',
  },
  {
    name: '5 features',
    url: PREDICT,
    json: { features: [5.1, 3.5, 1.4, 0.2, 9] },
    status: 400,
    code: 'INVALID_INPUT',
    path: 'features',
  },
  {
    name: 'an empty features array',
    url: PREDICT,
    json: { features: [] },
    status: 400,
    code: 'INVALID_INPUT',
    path: 'features',
  },
  {
    name: 'nested features [[1,2,3,4]]',
    url: PREDICT,
    json: { features: [[1, 2, 3, 4]] },
    status: 400,
    code: 'INVALID_INPUT',
    path: 'features',
  },
  {
    name: 'inputs with the wrong shape',
    url: PREDICT,
    json: { inputs: { float_input: [1, 2, 3] } },
    status: 400,
    code: 'INVALID_INPUT',
    path: 'inputs.float_input',
  },
  {
    name: 'inputs with the batch dimension included',
    url: PREDICT,
    json: { inputs: { float_input: [OK] } },
    status: 400,
    code: 'INVALID_INPUT',
    path: 'inputs.float_input',
  },

  // Values that are not finite float32 numbers.
  {
    name: '"NaN" as a string',
    url: PREDICT,
    json: { features: [5.1, 'NaN', 1.4, 0.2] },
    status: 400,
    code: 'INVALID_INPUT',
    path: 'features[1]',
  },
  {
    name: '"Infinity" as a string',
    url: PREDICT,
    json: { features: [5.1, 3.5, 'Infinity', 0.2] },
    status: 400,
    code: 'INVALID_INPUT',
    path: 'features[2]',
  },
  {
    name: '1e400 (parses to Infinity)',
    url: PREDICT,
    raw: '{"features":[5.1,3.5,1e400,0.2]}',
    status: 400,
    code: 'INVALID_INPUT',
    path: 'features[2]',
  },
  {
    name: '-1e400 (parses to -Infinity)',
    url: PREDICT,
    raw: '{"features":[-1e400,3.5,1.4,0.2]}',
    status: 400,
    code: 'INVALID_INPUT',
    path: 'features[0]',
  },
  {
    name: '1e39, beyond float32',
    url: PREDICT,
    raw: '{"features":[5.1,3.5,1.4,1e39]}',
    status: 400,
    code: 'INVALID_INPUT',
    path: 'features[3]',
  },
  {
    name: '-1e39 in a batch, beyond float32',
    url: BATCH,
    raw: '{"instances":[[5.1,3.5,1.4,0.2],[5.1,-1e39,1.4,0.2]]}',
    status: 400,
    code: 'INVALID_INPUT',
    path: 'instances[1][1]',
  },

  // Huge and deep.
  // Far more values than iris takes: refused by the scan, before they are parsed.
  {
    name: '100000 features',
    url: PREDICT,
    json: { features: new Array(100_000).fill(1.5) },
    status: 413,
    code: 'PAYLOAD_TOO_LARGE',
  },
  {
    name: 'a batch instance of 100000 features',
    url: BATCH,
    json: { instances: [OK, new Array(100_000).fill(1.5)] },
    status: 413,
    code: 'PAYLOAD_TOO_LARGE',
  },
  // Within what the batch route takes, the shape is still checked instance by instance.
  {
    name: 'a batch instance of 40 features',
    url: BATCH,
    json: { instances: [OK, new Array(40).fill(1.5)] },
    status: 400,
    code: 'INVALID_INPUT',
    path: 'instances[1]',
  },
  {
    name: 'a batch of 1025 instances (MAX_BATCH_SIZE 1024)',
    url: BATCH,
    json: { instances: new Array(1025).fill(OK) },
    status: 400,
    code: 'INVALID_INPUT',
    path: 'instances',
  },
  {
    name: "the lesson's batch of 1025 instances",
    url: '/predict/batch',
    json: { instances: new Array(1025).fill(OK) },
    status: 400,
    code: 'INVALID_INPUT',
    path: 'instances',
  },
  {
    name: 'a 200-level nested array as a feature',
    url: PREDICT,
    json: { features: [5.1, 3.5, nested(200), 0.2] },
    status: 400,
    code: 'INVALID_INPUT',
    path: `features[2]${'[0]'.repeat(MAX_JSON_DEPTH - 2)}`,
  },
  {
    name: 'a 200-level nested array as features',
    url: PREDICT,
    json: { features: nested(200) },
    status: 400,
    code: 'INVALID_INPUT',
    path: `features${'[0]'.repeat(MAX_JSON_DEPTH - 1)}`,
  },
  {
    name: `a ${DEEP}-level nested array as a feature`,
    url: PREDICT,
    raw: `{"features":[5.1,3.5,${deepArrayText(DEEP)},0.2]}`,
    status: 400,
    code: 'INVALID_INPUT',
  },
  {
    name: `a ${DEEP}-level nested array as features`,
    url: PREDICT,
    raw: `{"features":${deepArrayText(DEEP)}}`,
    status: 400,
    code: 'INVALID_INPUT',
  },
  {
    name: `a ${DEEP}-level nested array as a batch instance`,
    url: BATCH,
    raw: `{"instances":[${deepArrayText(DEEP)}]}`,
    status: 400,
    code: 'INVALID_INPUT',
  },
  {
    name: `a ${DEEP}-level nested object in an unknown field`,
    url: PREDICT,
    raw: `{"features":[5.1,3.5,1.4,0.2],"extra":${deepObjectText(DEEP)}}`,
    status: 400,
    code: 'INVALID_INPUT',
  },

  // Fields and body shapes.
  {
    name: 'an unknown top-level field',
    url: PREDICT,
    json: { features: OK, extra: 1 },
    status: 400,
    code: 'INVALID_INPUT',
    path: 'extra',
  },
  {
    name: 'an unknown top-level field on a batch',
    url: BATCH,
    json: { instances: [OK], extra: 1 },
    status: 400,
    code: 'INVALID_INPUT',
    path: 'extra',
  },
  {
    name: 'features and inputs together',
    url: PREDICT,
    json: { features: OK, inputs: { float_input: OK } },
    status: 400,
    code: 'INVALID_INPUT',
    path: 'body',
  },
  { name: 'an empty object', url: PREDICT, json: {}, status: 400, code: 'INVALID_INPUT', path: 'body' },
  {
    name: 'an empty body with Content-Type json',
    url: PREDICT,
    raw: '',
    status: 400,
    code: 'INVALID_INPUT',
    path: 'body',
  },
  { name: 'a JSON array body', url: PREDICT, raw: '[1,2,3]', status: 400, code: 'INVALID_INPUT', path: 'body' },
  // Express's JSON parser is strict: top-levels other than an object or array are not JSON to it.
  { name: 'a JSON string body', url: PREDICT, raw: '"x"', status: 400, code: 'MALFORMED_JSON' },
  { name: 'a JSON null body', url: PREDICT, raw: 'null', status: 400, code: 'MALFORMED_JSON' },
  { name: 'a JSON number body', url: BATCH, raw: '42', status: 400, code: 'MALFORMED_JSON' },
  { name: 'truncated JSON', url: PREDICT, raw: '{"features":[5.1,3.5', status: 400, code: 'MALFORMED_JSON' },
  {
    name: 'JSON with a trailing comma',
    url: BATCH,
    raw: '{"instances":[[5.1,3.5,1.4,0.2],]}',
    status: 400,
    code: 'MALFORMED_JSON',
  },
  {
    name: 'Content-Type text/plain',
    url: PREDICT,
    raw: JSON.stringify({ features: OK }),
    type: 'text/plain',
    status: 415,
    code: 'UNSUPPORTED_MEDIA_TYPE',
  },
  {
    name: 'Content-Type form-urlencoded',
    url: PREDICT,
    raw: 'features=5.1&features=3.5',
    type: 'application/x-www-form-urlencoded',
    status: 415,
    code: 'UNSUPPORTED_MEDIA_TYPE',
  },
  {
    name: 'no Content-Type on the lesson route',
    url: '/predict',
    raw: Buffer.from(JSON.stringify({ features: OK })),
    type: '',
    status: 415,
    code: 'UNSUPPORTED_MEDIA_TYPE',
  },
  {
    name: 'an unsupported charset',
    url: PREDICT,
    raw: JSON.stringify({ features: OK }),
    type: 'application/json; charset=latin1',
    status: 415,
    code: 'UNSUPPORTED_MEDIA_TYPE',
  },
  {
    name: 'an unsupported Content-Encoding',
    url: PREDICT,
    raw: JSON.stringify({ features: OK }),
    headers: { 'Content-Encoding': 'foo' },
    status: 415,
    code: 'UNSUPPORTED_MEDIA_TYPE',
  },
  {
    name: 'Content-Encoding gzip on a body that is not gzip',
    url: PREDICT,
    raw: JSON.stringify({ features: OK }),
    headers: { 'Content-Encoding': 'gzip' },
    status: 415,
    code: 'UNSUPPORTED_MEDIA_TYPE',
  },
  {
    name: 'a body over BODY_LIMIT (10kb)',
    app: 'small',
    url: PREDICT,
    json: { features: new Array(5000).fill(1.2345) },
    status: 413,
    code: 'PAYLOAD_TOO_LARGE',
  },
  {
    name: 'a batch over BODY_LIMIT (10kb)',
    app: 'small',
    url: BATCH,
    json: { instances: new Array(1000).fill(OK) },
    status: 413,
    code: 'PAYLOAD_TOO_LARGE',
  },

  // Models, versions and routes.
  {
    name: 'an unknown model',
    url: '/v1/models/nope/predict',
    json: { features: OK },
    status: 404,
    code: 'MODEL_NOT_FOUND',
  },
  {
    name: 'an unknown model, batch',
    url: '/v1/models/nope/predict/batch',
    json: { instances: [OK] },
    status: 404,
    code: 'MODEL_NOT_FOUND',
  },
  {
    name: 'a model named __proto__',
    url: '/v1/models/__proto__/predict',
    json: { features: OK },
    status: 404,
    code: 'MODEL_NOT_FOUND',
  },
  {
    name: 'a model named constructor',
    url: '/v1/models/constructor/predict/batch',
    json: { instances: [OK] },
    status: 404,
    code: 'MODEL_NOT_FOUND',
  },
  {
    name: 'unknown version 99',
    url: '/v1/models/iris/versions/99/predict',
    json: { features: OK },
    status: 404,
    code: 'MODEL_NOT_FOUND',
  },
  {
    name: 'unknown version 99, batch',
    url: '/v1/models/iris/versions/99/predict/batch',
    json: { instances: [OK] },
    status: 404,
    code: 'MODEL_NOT_FOUND',
  },
  {
    name: "version 'abc'",
    url: '/v1/models/iris/versions/abc/predict',
    json: { features: OK },
    status: 400,
    code: 'INVALID_INPUT',
    path: 'version',
  },
  {
    name: "version '0'",
    url: '/v1/models/iris/versions/0/predict',
    json: { features: OK },
    status: 400,
    code: 'INVALID_INPUT',
    path: 'version',
  },
  {
    name: "version '-1'",
    url: '/v1/models/iris/versions/-1/predict/batch',
    json: { instances: [OK] },
    status: 400,
    code: 'INVALID_INPUT',
    path: 'version',
  },
  {
    name: "version '1.0'",
    url: '/v1/models/iris/versions/1.0/predict',
    json: { features: OK },
    status: 400,
    code: 'INVALID_INPUT',
    path: 'version',
  },
  {
    name: "GET version 'abc'",
    method: 'get',
    url: '/v1/models/iris/versions/abc',
    status: 400,
    code: 'INVALID_INPUT',
    path: 'version',
  },
  {
    name: 'GET unknown version 99',
    method: 'get',
    url: '/v1/models/iris/versions/99',
    status: 404,
    code: 'MODEL_NOT_FOUND',
  },
  { name: 'GET an unknown model', method: 'get', url: '/v1/models/nope', status: 404, code: 'MODEL_NOT_FOUND' },
  { name: 'an unknown route', url: '/v1/nothing/here', json: { features: OK }, status: 404, code: 'ROUTE_NOT_FOUND' },
  { name: 'GET an unknown route', method: 'get', url: '/nope', status: 404, code: 'ROUTE_NOT_FOUND' },
  { name: 'GET on the POST-only predict route', method: 'get', url: PREDICT, status: 404, code: 'ROUTE_NOT_FOUND' },
  { name: "GET on the lesson's POST-only route", method: 'get', url: '/predict', status: 404, code: 'ROUTE_NOT_FOUND' },
  {
    name: 'PUT on the predict route',
    method: 'put',
    url: PREDICT,
    json: { features: OK },
    status: 404,
    code: 'ROUTE_NOT_FOUND',
  },
  { name: 'DELETE on the batch route', method: 'delete', url: BATCH, status: 404, code: 'ROUTE_NOT_FOUND' },

  // Named features and inputs.
  {
    name: 'named features with a missing name',
    url: PREDICT,
    json: { features: { sepal_length: 5.1, petal_length: 1.4, petal_width: 0.2 } },
    status: 400,
    code: 'INVALID_INPUT',
    path: 'features.sepal_width',
  },
  {
    name: 'named features with an unknown name',
    url: PREDICT,
    json: { features: { ...NAMED, petal_colour: 3 } },
    status: 400,
    code: 'INVALID_INPUT',
    path: 'features.petal_colour',
  },
  {
    name: 'named features, empty',
    url: PREDICT,
    json: { features: {} },
    status: 400,
    code: 'INVALID_INPUT',
    path: 'features.sepal_length',
  },
  // The client named the feature, so the path names it too (not its position).
  {
    name: 'named features with a string value',
    url: PREDICT,
    json: { features: { ...NAMED, sepal_width: 'wide' } },
    status: 400,
    code: 'INVALID_INPUT',
    path: 'features.sepal_width',
  },
  {
    name: 'a batch of named features with a null value',
    url: BATCH,
    json: { instances: [OK, OK, { ...NAMED, petal_width: null }] },
    status: 400,
    code: 'INVALID_INPUT',
    path: 'instances[2].petal_width',
  },
  {
    name: 'inputs with an unknown input name',
    url: PREDICT,
    json: { inputs: { float_input: OK, other: [1] } },
    status: 400,
    code: 'INVALID_INPUT',
    path: 'inputs.other',
  },
  {
    name: 'inputs with a missing input',
    url: PREDICT,
    json: { inputs: {} },
    status: 400,
    code: 'INVALID_INPUT',
    path: 'inputs.float_input',
  },
  { name: 'inputs null', url: PREDICT, json: { inputs: null }, status: 400, code: 'INVALID_INPUT', path: 'inputs' },

  // Batch bodies.
  {
    name: 'instances not an array',
    url: BATCH,
    json: { instances: { a: OK } },
    status: 400,
    code: 'INVALID_INPUT',
    path: 'instances',
  },
  {
    name: 'instances a string',
    url: BATCH,
    json: { instances: 'x' },
    status: 400,
    code: 'INVALID_INPUT',
    path: 'instances',
  },
  { name: 'instances missing', url: BATCH, json: {}, status: 400, code: 'INVALID_INPUT', path: 'instances' },
  {
    name: 'instances empty',
    url: BATCH,
    json: { instances: [] },
    status: 400,
    code: 'INVALID_INPUT',
    path: 'instances',
  },
  {
    name: 'instances of strings',
    url: BATCH,
    json: { instances: ['5.1,3.5,1.4,0.2', 'x'] },
    status: 400,
    code: 'INVALID_INPUT',
    path: 'instances[0]',
  },
  {
    name: 'a null instance',
    url: BATCH,
    json: { instances: [OK, null] },
    status: 400,
    code: 'INVALID_INPUT',
    path: 'instances[1]',
  },
  {
    name: 'a number instance',
    url: BATCH,
    json: { instances: [OK, 7] },
    status: 400,
    code: 'INVALID_INPUT',
    path: 'instances[1]',
  },
  {
    name: 'an empty object instance',
    url: BATCH,
    json: { instances: [OK, {}] },
    status: 400,
    code: 'INVALID_INPUT',
    path: 'instances[1]',
  },
  {
    name: 'instance 3 with features as a string',
    url: BATCH,
    json: { instances: [OK, OK, OK, { features: 'x' }] },
    status: 400,
    code: 'INVALID_INPUT',
    path: 'instances[3].features',
  },
  {
    name: 'instance 3 with 2 features',
    url: BATCH,
    json: { instances: [OK, OK, OK, { features: [1, 2] }] },
    status: 400,
    code: 'INVALID_INPUT',
    path: 'instances[3].features',
  },
  {
    name: 'an instance with an unknown field',
    url: BATCH,
    json: { instances: [OK, { features: OK, weight: 2 }] },
    status: 400,
    code: 'INVALID_INPUT',
    path: 'instances[1].weight',
  },
  {
    name: 'an instance with both features and inputs',
    url: BATCH,
    json: { instances: [OK, { features: OK, inputs: { float_input: OK } }] },
    status: 400,
    code: 'INVALID_INPUT',
    path: 'instances[1]',
  },
  {
    name: 'an instance with inputs of the wrong shape',
    url: BATCH,
    json: { instances: [{ inputs: { float_input: [1, 2, 3] } }] },
    status: 400,
    code: 'INVALID_INPUT',
    path: 'instances[0].inputs.float_input',
  },
  {
    name: 'an instance with a string value',
    url: BATCH,
    json: { instances: [OK, [5.1, 3.5, 'x', 0.2]] },
    status: 400,
    code: 'INVALID_INPUT',
    path: 'instances[1][2]',
  },

  // The lesson's routes.
  {
    name: "the lesson's /predict with 3 features",
    url: '/predict',
    json: { features: [5.1, 3.5, 1.4] },
    status: 400,
    code: 'INVALID_INPUT',
    path: 'features',
  },
  {
    name: "the lesson's /predict with features as a string",
    url: '/predict',
    json: { features: 'x' },
    status: 400,
    code: 'INVALID_INPUT',
    path: 'features',
  },
  {
    name: "the lesson's /predict with a null value",
    url: '/predict',
    json: { features: [5.1, 3.5, 1.4, null] },
    status: 400,
    code: 'INVALID_INPUT',
    path: 'features[3]',
  },
  {
    name: "the lesson's /predict with an unknown field",
    url: '/predict',
    json: { features: OK, model: 'iris' },
    status: 400,
    code: 'INVALID_INPUT',
    path: 'model',
  },
  {
    name: "the lesson's /predict with truncated JSON",
    url: '/predict',
    raw: '{"features":',
    status: 400,
    code: 'MALFORMED_JSON',
  },
  {
    name: "the lesson's /predict/batch with instances not an array",
    url: '/predict/batch',
    json: { instances: 5 },
    status: 400,
    code: 'INVALID_INPUT',
    path: 'instances',
  },
  {
    name: "the lesson's /predict/batch with a bad value in row 1",
    url: '/predict/batch',
    json: { instances: [OK, [5.1, 3.5, true, 0.2]] },
    status: 400,
    code: 'INVALID_INPUT',
    path: 'instances[1][2]',
  },
  {
    name: "the lesson's /predict/batch with instances of strings",
    url: '/predict/batch',
    json: { instances: ['a', 'b'] },
    status: 400,
    code: 'INVALID_INPUT',
    path: 'instances[0]',
  },

  // Prototype keys: rejected like any other unknown field, never silently dropped nor merged.
  {
    name: '__proto__ at the top level',
    url: PREDICT,
    raw: '{"features":[5.1,3.5,1.4,0.2],"__proto__":{"polluted":"yes"}}',
    status: 400,
    code: 'INVALID_INPUT',
    path: '__proto__',
  },
  {
    name: 'constructor at the top level',
    url: PREDICT,
    raw: '{"features":[5.1,3.5,1.4,0.2],"constructor":{"prototype":{"polluted":"yes"}}}',
    status: 400,
    code: 'INVALID_INPUT',
    path: 'constructor',
  },
  {
    name: '__proto__ alone at the top level',
    url: PREDICT,
    raw: '{"__proto__":{"features":[5.1,3.5,1.4,0.2]}}',
    status: 400,
    code: 'INVALID_INPUT',
  },
  {
    name: '__proto__ at the top level of a batch',
    url: BATCH,
    raw: '{"instances":[[5.1,3.5,1.4,0.2]],"__proto__":{"polluted":"yes"}}',
    status: 400,
    code: 'INVALID_INPUT',
    path: '__proto__',
  },
  {
    name: '__proto__ inside named features',
    url: PREDICT,
    raw: '{"features":{"sepal_length":5.1,"sepal_width":3.5,"petal_length":1.4,"petal_width":0.2,"__proto__":{"polluted":"yes"}}}',
    status: 400,
    code: 'INVALID_INPUT',
    path: 'features.__proto__',
  },
  {
    name: 'constructor inside named features',
    url: PREDICT,
    raw: '{"features":{"sepal_length":5.1,"sepal_width":3.5,"petal_length":1.4,"petal_width":0.2,"constructor":{"prototype":{"polluted":"yes"}}}}',
    status: 400,
    code: 'INVALID_INPUT',
    path: 'features.constructor',
  },
  {
    name: '__proto__ inside inputs',
    url: PREDICT,
    raw: '{"inputs":{"float_input":[5.1,3.5,1.4,0.2],"__proto__":{"polluted":"yes"}}}',
    status: 400,
    code: 'INVALID_INPUT',
    path: 'inputs.__proto__',
  },
  {
    name: '__proto__ inside a batch instance of named features',
    url: BATCH,
    raw: '{"instances":[{"sepal_length":5.1,"sepal_width":3.5,"petal_length":1.4,"petal_width":0.2,"__proto__":{"polluted":"yes"}}]}',
    status: 400,
    code: 'INVALID_INPUT',
    path: 'instances[0].__proto__',
  },
  {
    name: "__proto__ inside the lesson's features",
    url: '/predict',
    raw: '{"features":{"sepal_length":5.1,"sepal_width":3.5,"petal_length":1.4,"petal_width":0.2,"__proto__":{"polluted":"yes"}}}',
    status: 400,
    code: 'INVALID_INPUT',
    path: 'features.__proto__',
  },
];

/** Every string anywhere in a JSON value. */
function strings(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.flatMap(strings);
  if (value && typeof value === 'object') return Object.entries(value).flatMap(([k, v]) => [k, ...strings(v)]);
  return [];
}

/** A line of a stack trace: `at fn (file:1:2)`, `at file:1:2`, `at new X (<anonymous>)`. */
const STACK_LINE = /(^|\n)\s*at\s+\S.*(:\d+:\d+\)?|\(<anonymous>\)|\(native\))\s*($|\n)/;

function expectStructuredError(res: request.Response, c: Pick<Case, 'status' | 'code' | 'path'>): void {
  const context = `${res.status} ${res.text.slice(0, 300)}`;
  expect({ status: res.status, context }).toEqual({ status: c.status, context });
  expect(res.headers['content-type']).toMatch(/^application\/json/);
  const body = res.body as Record<string, unknown>;
  expect(body.statusCode).toBe(c.status);
  const codes = typeof c.code === 'string' ? [c.code] : c.code;
  expect(codes).toContain(body.error);
  expect(typeof body.message).toBe('string');
  expect((body.message as string).length).toBeGreaterThan(0);
  expect(Array.isArray(body.details)).toBe(true);
  for (const d of body.details as { path: unknown; message: unknown }[]) {
    expect(typeof d.path).toBe('string');
    expect(typeof d.message).toBe('string');
  }
  if (c.path !== undefined) {
    expect((body.details as { path: string }[])[0]?.path).toBe(c.path);
  }
  expect(typeof body.requestId).toBe('string');
  expect((body.requestId as string).length).toBeGreaterThan(0);
  expect(body.requestId).toBe(res.headers['x-request-id']);
  // Never a stack trace or a file of the server.
  for (const s of strings(body)) expect(s).not.toMatch(STACK_LINE);
  expect(res.text).not.toContain('node_modules');
  expect(res.text).not.toContain('/work/');
}

describe('malformed requests get a structured 4xx, never a 500', () => {
  let app: INestApplication;
  let small: INestApplication;
  let prototypeBefore: string[];
  const outerRealm = () => vm.runInThisContext('({})') as Record<string, unknown>;

  beforeAll(async () => {
    prototypeBefore = Object.getOwnPropertyNames(Object.prototype).sort();
    [app, small] = await Promise.all([startApp(), startApp({ BODY_LIMIT: '10kb' })]);
  });
  afterAll(async () => {
    await Promise.all([app?.close(), small?.close()]);
  });

  it.each(CASES)('$name → $status $code', async (c) => {
    const server = (c.app === 'small' ? small : app).getHttpServer();
    let req = request(server)[c.method ?? 'post'](c.url);
    for (const [k, v] of Object.entries(c.headers ?? {})) req = req.set(k, v);
    let res: request.Response;
    if (c.raw !== undefined) {
      if (c.type !== '') req = req.set('Content-Type', c.type ?? 'application/json');
      res = await req.send(c.raw);
    } else if (c.json !== undefined) {
      res = await req.send(c.json as object);
    } else {
      res = await req;
    }
    expectStructuredError(res, c);
  });

  it('echoes a client-sent X-Request-Id in the error body', async () => {
    const res = await request(app.getHttpServer()).post(PREDICT).set('X-Request-Id', 'sweep-42').send({ features: 1 });
    expectStructuredError(res, { status: 400, code: 'INVALID_INPUT', path: 'features' });
    expect(res.body.requestId).toBe('sweep-42');
    expect(res.headers['x-request-id']).toBe('sweep-42');
  });

  it('says what was sent for 1e400 rather than "null"', async () => {
    const res = await request(app.getHttpServer())
      .post(PREDICT)
      .set('Content-Type', 'application/json')
      .send('{"features":[5.1,3.5,1e400,0.2]}');
    expectStructuredError(res, { status: 400, code: 'INVALID_INPUT', path: 'features[2]' });
    expect(res.body.details[0].message).not.toMatch(/got null/);
    expect(res.body.details[0].message).toMatch(/finite|Infinity|range/i);
  });

  it('lists every bad element (up to a bound) with its own path', async () => {
    const res = await request(app.getHttpServer())
      .post(BATCH)
      .send({ instances: new Array(1000).fill(['a', 'b', 'c', 'd']) });
    expectStructuredError(res, { status: 400, code: 'INVALID_INPUT', path: 'instances[0][0]' });
    const paths = (res.body.details as { path: string }[]).map((d) => d.path);
    expect(paths.slice(0, 5)).toEqual([
      'instances[0][0]',
      'instances[0][1]',
      'instances[0][2]',
      'instances[0][3]',
      'instances[1][0]',
    ]);
    expect(paths.length).toBeLessThanOrEqual(20);
  });

  it('leaves Object.prototype untouched after the prototype-key requests', () => {
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(([] as unknown as Record<string, unknown>).polluted).toBeUndefined();
    expect(outerRealm().polluted).toBeUndefined();
    expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(prototypeBefore);
    expect(Object.prototype.toString.call({})).toBe('[object Object]');
  });

  it('still answers a valid request after the sweep', async () => {
    const res = await request(app.getHttpServer()).post(PREDICT).send({ features: OK }).expect(200);
    expect(res.body.model).toBe('iris');
    expect(res.body.prediction).toBe(0);
    expect(res.body.label).toBe('setosa');
    expect(res.body.probability).toBeCloseTo(0.984695, 4);
    const named = await request(app.getHttpServer()).post(PREDICT).send({ features: NAMED }).expect(200);
    expect(named.body.label).toBe('setosa');
    const lesson = await request(app.getHttpServer()).post('/predict').send({ features: OK }).expect(200);
    expect(lesson.body).toMatchObject({ prediction: 0, class_name: 'setosa', model_version: '1' });
    const batch = await request(small.getHttpServer())
      .post(BATCH)
      .send({ instances: [OK, [7.0, 3.2, 4.7, 1.4], [6.3, 3.3, 6.0, 2.5]] })
      .expect(200);
    expect(batch.body.predictions.map((p: { label: string }) => p.label)).toEqual([
      'setosa',
      'versicolor',
      'virginica',
    ]);
  });
});

describe('requests the HTTP layer could answer bare get the structured body, and never echo the input', () => {
  let app: INestApplication;
  let port: number;
  beforeAll(async () => {
    app = await startApp();
    port = await listen(app);
  });
  afterAll(() => app?.close());

  /** Bytes as written, on a fresh connection; the answer's status and parsed body. */
  const exchange = (bytes: Buffer | string) =>
    new Promise<{ status: number; body: Record<string, unknown>; length: number }>((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1', () => socket.end(bytes));
      const chunks: Buffer[] = [];
      socket.on('data', (d: Buffer) => chunks.push(d));
      socket.on('error', reject);
      socket.on('close', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        const body = text.slice(text.indexOf('\r\n\r\n') + 4);
        resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1]), body: JSON.parse(body), length: body.length });
      });
    });

  it('a request without Host is a structured 400 with its request id', async () => {
    const res = await exchange('GET /v1/models HTTP/1.1\r\nConnection: close\r\n\r\n');
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({
      statusCode: 400,
      error: 'INVALID_INPUT',
      message: expect.stringMatching(/Host/),
      requestId: expect.any(String),
    });
  });

  it('a body cut short by the client closing its side is a structured 400 that says so', async () => {
    const res = await exchange(
      'POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"features"',
    );
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({
      error: 'INVALID_INPUT',
      message: expect.stringMatching(/connection ended before the request did/),
      requestId: expect.any(String),
    });
  });

  it('a 15 KB path segment is refused with a short body that does not repeat it', async () => {
    const segment = 'a'.repeat(15000);
    const res = await exchange(`GET /v1/models/${segment}/predict HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    expect([400, 404]).toContain(res.status);
    expect(res.body).toMatchObject({ statusCode: res.status, requestId: expect.any(String) });
    expect(res.length).toBeLessThan(1000);
    expect(JSON.stringify(res.body)).not.toContain('a'.repeat(300));
  });

  it('a body that is not UTF-8 is refused as such, not as a length mismatch', async () => {
    const body = Buffer.concat([
      Buffer.from('{"features":[1,2,3,4],"x":"'),
      Buffer.from([0xff, 0xfe]),
      Buffer.from('"}'),
    ]);
    const head = `POST ${PREDICT} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`;
    const res = await exchange(Buffer.concat([Buffer.from(head), body]));
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ error: 'MALFORMED_JSON', message: expect.stringMatching(/not valid UTF-8/) });
    expect(res.body.message).not.toMatch(/Content-Length/);
  });
});

/**
 * Sends a head that declares `declared` body bytes and only `sent` of them, then waits: for the answer,
 * and for how the connection ends ('end' is the server's FIN; an 'error' would be a reset).
 */
function sendPartial(
  port: number,
  path: string,
  headers: Record<string, string>,
  sent: Buffer,
  declared: number,
): Promise<{ head: string; body: Record<string, unknown>; ended: 'end' | 'error' }> {
  return new Promise<{ head: string; body: Record<string, unknown>; ended: 'end' | 'error' }>((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => {
      const lines = Object.entries({ host: 'x', 'content-length': String(declared), ...headers })
        .map(([k, v]) => `${k}: ${v}\r\n`)
        .join('');
      socket.write(`POST ${path} HTTP/1.1\r\n${lines}\r\n`);
      socket.write(sent);
    });
    const chunks: Buffer[] = [];
    socket.on('data', (d: Buffer) => chunks.push(d));
    const settle = (ended: 'end' | 'error') => {
      const text = Buffer.concat(chunks).toString('utf8');
      const split = text.indexOf('\r\n\r\n');
      socket.destroy();
      if (split < 0) return reject(new Error(`no answer before the connection ended (${ended})`));
      resolve({ head: text.slice(0, split), body: JSON.parse(text.slice(split + 4)), ended });
    };
    socket.on('end', () => settle('end'));
    socket.on('error', () => settle('error'));
  });
}

describe('a body refused before it is read whole: answered at once, the rest never read, the connection closed cleanly', () => {
  const KEY = 'refuse-early-key-0123456789abcdef';
  let app: INestApplication;
  let port: number;
  beforeAll(async () => {
    app = await startApp({ API_KEYS: KEY });
    port = await listen(app);
  });
  afterAll(() => app?.close());

  const partial = (path: string, headers: Record<string, string>, sent: Buffer, declared: number) =>
    sendPartial(port, path, headers, sent, declared);

  const json = { 'content-type': 'application/json', authorization: `Bearer ${KEY}` };

  it.each([
    ['/predict', /deeper than/],
    ['/v1/models/iris/predict/batch', /deeper than/],
    ['/v2/models/iris/infer', /deeper than/],
  ])('%s: too deep from the first chunk of a 1 MB body, refused without the rest', async (path, said) => {
    const res = await partial(path, json, Buffer.from('{"instances":' + '['.repeat(70_000)), 1_000_000);
    expect(res.head).toMatch(/^HTTP\/1\.1 400 /);
    expect(res.head).toMatch(/\r\nconnection: close/i);
    expect(JSON.stringify(res.body)).toMatch(said);
    expect(res.ended).toBe('end');
  });

  it('too many arrays, refused from the chunks read so far', async () => {
    const sent = Buffer.from(`{"instances":[${Array(20_000).fill('[]').join(',')}`);
    // A batch of digits may hold more elements than MAX_JSON_CONTAINERS: the containers are what refuse this one.
    const res = await partial('/v1/models/digits/predict/batch', json, sent, 1_000_000);
    expect(res.head).toMatch(/^HTTP\/1\.1 413 /);
    expect(res.body).toMatchObject({
      error: 'PAYLOAD_TOO_LARGE',
      message: expect.stringMatching(/MAX_JSON_CONTAINERS/),
    });
    expect(res.ended).toBe('end');
  });

  it.each([
    ['/predict', '{"features":[', "model 'iris' takes 4 values per instance, one instance here"],
    ['/v1/models/iris/predict/batch', '{"instances":[', 'at most MAX_BATCH_SIZE (1024) instances'],
    [
      '/v2/models/iris/infer',
      '{"inputs":[{"name":"float_input","datatype":"FP32","shape":[65536,4],"data":[',
      '4 values',
    ],
    ['/v1/models/nope/predict', '{"features":[', 'no model of that name is served'],
    ['/v1/no-such-route', '{"parameters":{"x":[', 'this route takes no tensors'],
  ])('%s: more numbers than the route can take, refused from the first of a 1 MB body', async (path, head, said) => {
    const sent = Buffer.from(head + Array(60_000).fill('0.5').join(','));
    const res = await partial(path, json, sent, 1_000_000);
    expect(res.head).toMatch(/^HTTP\/1\.1 413 /);
    expect(res.head).toMatch(/\r\nconnection: close/i);
    expect(JSON.stringify(res.body)).toContain(said);
    expect(res.ended).toBe('end');
  });

  it('still takes the largest requests the bundled models allow: MAX_BATCH_SIZE instances, as arrays or tensors', async () => {
    const rows = Array.from({ length: 1024 }, (_, i) => [5.1 + i / 1024, 3.5, 1.4, 0.2]);
    const server = request(`http://127.0.0.1:${port}`);
    const batch = await server.post('/v1/models/iris/predict/batch').set(json).send({ instances: rows });
    expect(batch.status).toBe(200);
    expect(batch.body.predictions).toHaveLength(1024);
    const digits = await server
      .post('/v1/models/digits/predict/batch')
      .set(json)
      .send({ instances: Array.from({ length: 1024 }, () => Array(64).fill(3)) });
    expect(digits.status).toBe(200);
    const v2 = await server
      .post('/v2/models/iris/infer')
      .set(json)
      .send({ inputs: [{ name: 'float_input', datatype: 'FP32', shape: [1024, 4], data: rows }] });
    expect(v2.status).toBe(200);
  });

  it('without a key, refused by the headers before a byte of the body is sent', async () => {
    const res = await partial('/predict', { 'content-type': 'application/json' }, Buffer.alloc(0), 1_000_000);
    expect(res.head).toMatch(/^HTTP\/1\.1 401 /);
    expect(res.head).toMatch(/\r\nconnection: close/i);
    expect(res.body).toMatchObject({ error: 'UNAUTHENTICATED', requestId: expect.any(String) });
    expect(res.ended).toBe('end');
  });

  it.each([
    ['invalid for the route', '{"features":[1,2,3]}'],
    ['too deep, refused by the scan on its last chunk', '['.repeat(40)],
  ])('a refused body that was read whole (%s) leaves the connection open for the next request', async (_, bad) => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const post = (body: string) =>
      new Promise<{ status: number; socket: unknown }>((resolve, reject) => {
        const req = http.request(
          { host: '127.0.0.1', port, path: '/predict', method: 'POST', agent, headers: json },
          (res) => {
            res.resume();
            res.on('end', () => resolve({ status: res.statusCode ?? 0, socket: req.socket }));
          },
        );
        req.on('error', reject);
        req.end(body);
      });
    const refused = await post(bad);
    const answered = await post('{"features":[5.1,3.5,1.4,0.2]}');
    agent.destroy();
    expect([refused.status, answered.status]).toEqual([400, 200]);
    expect(answered.socket).toBe(refused.socket);
  });
});

describe('refusals of unread bodies are paced (REFUSED_BODIES_PER_SECOND), the service serving others meanwhile', () => {
  const KEY = 'paced-refusals-key-0123456789abcdef';
  const deep = Buffer.from('['.repeat(70_000));
  const json = { 'content-type': 'application/json' };
  let paced: INestApplication;
  let limited: INestApplication;
  let pacedPort: number;
  let limitedPort: number;
  beforeAll(async () => {
    [paced, limited] = await Promise.all([
      startApp({ REFUSED_BODIES_PER_SECOND: '2' }),
      startApp({ REFUSED_BODIES_PER_SECOND: '2', API_KEYS: KEY, RATE_LIMIT_RPM: '1' }),
    ]);
    [pacedPort, limitedPort] = await Promise.all([listen(paced), listen(limited)]);
  });
  afterAll(() => Promise.all([paced?.close(), limited?.close()]));

  const delayed = async (port: number) => {
    const text = (await request(`http://127.0.0.1:${port}`).get('/metrics')).text;
    return Number(/^http_refusals_delayed_total (\S+)/m.exec(text)?.[1]);
  };

  it('answers a burst at once and the rest in turn, each in full, while a good request is answered at once', async () => {
    const start = Date.now();
    const refusals = Array.from({ length: 6 }, () =>
      sendPartial(pacedPort, '/predict', json, deep, 1_000_000).then((res) => ({ ...res, at: Date.now() - start })),
    );
    // Sent once the first two are answered, so the other four are waiting.
    await Promise.race(refusals);
    const good = await request(`http://127.0.0.1:${pacedPort}`)
      .post('/predict')
      .send({ features: [5.1, 3.5, 1.4, 0.2] });
    const goodAt = Date.now() - start;
    const answers = await Promise.all(refusals);
    expect(good.status).toBe(200);
    for (const res of answers) {
      expect(res.head).toMatch(/^HTTP\/1\.1 400 /);
      expect(res.body).toMatchObject({ error: 'INVALID_INPUT', requestId: expect.any(String) });
      expect(res.ended).toBe('end');
    }
    const times = answers.map((res) => res.at).sort((a, b) => a - b);
    // Two at once, then two a second: the last of the four that waited goes out two seconds after the burst.
    expect(times[5] - times[0]).toBeGreaterThanOrEqual(1900);
    expect(goodAt).toBeLessThan(times[5]);
    expect(await delayed(pacedPort)).toBe(4);
  });

  it('never holds a 429, which tells its client when to come back', async () => {
    const auth = { ...json, authorization: `Bearer ${KEY}` };
    await request(`http://127.0.0.1:${limitedPort}`).get('/v1/models').set(auth);
    const answers = await Promise.all(
      Array.from({ length: 6 }, () => sendPartial(limitedPort, '/predict', auth, deep, 1_000_000)),
    );
    for (const res of answers) {
      expect(res.head).toMatch(/^HTTP\/1\.1 429 /);
      expect(res.head).toMatch(/\r\nretry-after: \d+/i);
    }
    expect(await delayed(limitedPort)).toBe(0);
  });
});
