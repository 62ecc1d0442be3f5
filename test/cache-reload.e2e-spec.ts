import { INestApplication } from '@nestjs/common';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { fixture, makeRepository, startApp } from './support/app';
import { listen } from './support/http';
import { waitFor } from './support/process';

/**
 * The prediction cache across a reload: a model file replaced under the same version number (here
 * iris_versions' version 1 replaced by its version 2, the same signature with other weights) must
 * never be answered from entries the old file left. Entries are keyed by the file's digest; this
 * checks that, end to end, for an explicit load and for a poll, on v1 and V2. `ref` serves the new
 * file under its own name, so the expected answer comes from a real run, not from this file.
 */

const VERSIONS = fixture('iris_versions');
const FEATURES = [6.0, 2.7, 5.1, 1.6];
// Another row for V2: the protocols share entries, and each is to meet its own MISS.
const V2_BODY = { inputs: [{ name: 'float_input', shape: [1, 4], datatype: 'FP32', data: [5.9, 3.0, 5.1, 1.8] }] };

type Answer = { status: number; cache: string | null; outputs: unknown };

async function repository(): Promise<string> {
  const config = JSON.parse(await fs.readFile(path.join(VERSIONS, 'config.json'), 'utf8')) as Record<string, unknown>;
  delete config.default_version;
  const dir = await makeRepository({ iv: VERSIONS, ref: VERSIONS }, { 'iv/config.json': JSON.stringify(config) });
  // iv serves the old file as version 1; ref serves the new one as version 1.
  await fs.rm(path.join(dir, 'iv', '2'), { recursive: true });
  await fs.rm(path.join(dir, 'ref', '1'), { recursive: true });
  await fs.rename(path.join(dir, 'ref', '2'), path.join(dir, 'ref', '1'));
  await fs.writeFile(path.join(dir, 'ref', 'config.json'), JSON.stringify(config));
  return dir;
}

/** The new file put in place of the old one in one rename, as a deploy would. */
async function replaceVersion1(dir: string): Promise<void> {
  const staged = path.join(dir, 'iv', '1', '.model.onnx.new');
  await fs.copyFile(path.join(VERSIONS, '2', 'model.onnx'), staged);
  await fs.rename(staged, path.join(dir, 'iv', '1', 'model.onnx'));
}

describe.each(['explicit', 'poll'] as const)('prediction cache across a reload (%s)', (mode) => {
  let app: INestApplication;
  let base: string;
  let dir: string;

  beforeAll(async () => {
    dir = await repository();
    app = await startApp({
      MODEL_REPOSITORY: dir,
      MODEL_CONTROL_MODE: mode,
      REPOSITORY_POLL_SECONDS: '1',
      CACHE_ENABLED: 'true',
    });
    base = `http://127.0.0.1:${await listen(app)}`;
  }, 300000);
  afterAll(async () => {
    await app?.close();
  });

  const post = async (route: string, body: unknown): Promise<Answer> => {
    const res = await fetch(`${base}${route}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    const json = (await res.json()) as { probabilities?: unknown; outputs?: { name: string; data: unknown }[] };
    return {
      status: res.status,
      cache: res.headers.get('x-cache'),
      outputs: json.probabilities ?? json.outputs?.map((o) => [o.name, o.data]),
    };
  };
  const v1 = (model = 'iv') => post(`/v1/models/${model}/predict`, { features: FEATURES });
  const v2 = (model = 'iv') => post(`/v2/models/${model}/infer`, V2_BODY);

  it('answers the same request with the new file, a MISS first, never the old entry', async () => {
    const before = { v1: await v1(), v2: await v2() };
    expect(before.v1).toMatchObject({ status: 200, cache: 'MISS' });
    expect(before.v2).toMatchObject({ status: 200, cache: 'MISS' });
    // Cached now: the entries a stale read would find.
    expect(await v1()).toEqual({ ...before.v1, cache: 'HIT' });
    expect(await v2()).toEqual({ ...before.v2, cache: 'HIT' });
    const expected = { v1: (await v1('ref')).outputs, v2: (await v2('ref')).outputs };
    expect(expected.v1).not.toEqual(before.v1.outputs);
    expect(expected.v2).not.toEqual(before.v2.outputs);

    await replaceVersion1(dir);
    let first: Answer | undefined;
    if (mode === 'explicit') {
      expect((await fetch(`${base}/v2/repository/models/iv/load`, { method: 'POST' })).status).toBe(200);
    } else {
      // Until the poll applies the new file the old one serves, and its entries with it; the first
      // answer that differs is the first of the new file.
      await waitFor(
        async () => {
          const answer = await v1();
          if (JSON.stringify(answer.outputs) === JSON.stringify(before.v1.outputs)) return false;
          first = answer;
          return true;
        },
        30000,
        'the poll to load the new file',
      );
    }
    const after = { v1: first ?? (await v1()), v2: await v2() };
    expect(after.v1).toEqual({ status: 200, cache: 'MISS', outputs: expected.v1 });
    expect(after.v2).toEqual({ status: 200, cache: 'MISS', outputs: expected.v2 });
    expect(await v1()).toEqual({ status: 200, cache: 'HIT', outputs: expected.v1 });
    expect(await v2()).toEqual({ status: 200, cache: 'HIT', outputs: expected.v2 });
  }, 300000);
});
