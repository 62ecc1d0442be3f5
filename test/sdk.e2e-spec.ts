import { INestApplication } from '@nestjs/common';
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import * as ts from 'typescript';
import { createClient, type InferenceClient, type Schemas } from '../clients/typescript/src';
import { ROOT, startApp } from './support/app';

const CLIENT = path.join(ROOT, 'clients', 'typescript');
const run = promisify(execFile);

/** Type-checks files against the client with the client's own strict settings; diagnostics by file name. */
function typeCheck(files: Record<string, string>, dir: string): Record<string, string[]> {
  const config = ts.getParsedCommandLineOfConfigFile(
    path.join(CLIENT, 'tsconfig.json'),
    { noEmit: true, rootDir: undefined },
    {
      ...ts.sys,
      onUnRecoverableConfigFileDiagnostic: (d) => {
        throw new Error(ts.flattenDiagnosticMessageText(d.messageText, '\n'));
      },
    },
  )!;
  const program = ts.createProgram(
    Object.keys(files).map((f) => path.join(dir, f)),
    config.options,
  );
  const byFile: Record<string, string[]> = Object.fromEntries(Object.keys(files).map((f) => [f, []]));
  for (const d of ts.getPreEmitDiagnostics(program)) {
    const file = d.file ? path.relative(dir, d.file.fileName) : '(global)';
    (byFile[file] ??= []).push(ts.flattenDiagnosticMessageText(d.messageText, '\n'));
  }
  return byFile;
}

const IMPORT = `import { createClient, type Schemas } from ${JSON.stringify(path.join(CLIENT, 'src'))};\nconst client = createClient({ baseUrl: 'http://localhost:8000' });\n`;

/** Calls the client must accept, and the mistakes it must refuse at compile time. */
const SNIPPETS: Record<string, string> = {
  'right.ts': `${IMPORT}
export async function right(): Promise<void> {
  const flower: Schemas['IrisFeatures'] = { sepal_length: 5.1, sepal_width: 3.5, petal_length: 1.4, petal_width: 0.2 };
  const one = await client.POST('/v1/models/iris/predict', { body: { features: flower } });
  const label: 'setosa' | 'versicolor' | 'virginica' | null | undefined = one.data?.label;
  await client.POST('/v1/models/iris/predict', { body: { features: [5.1, 3.5, 1.4, 0.2] } });
  await client.POST('/v1/models/iris/predict/batch', { body: { instances: [[5.1, 3.5, 1.4, 0.2], flower, { inputs: { float_input: [1, 2, 3, 4] } }] } });
  void label;
}
`,
  'wrong-feature-name.ts': `${IMPORT}
export const wrong = client.POST('/v1/models/iris/predict', {
  body: { features: { sepal_lenght: 5.1, sepal_width: 3.5, petal_length: 1.4, petal_width: 0.2 } },
});
`,
  'missing-feature.ts': `${IMPORT}
export const wrong = client.POST('/v1/models/iris/predict', { body: { features: { sepal_length: 5.1, sepal_width: 3.5, petal_length: 1.4 } } });
`,
  'string-feature.ts': `${IMPORT}
export const wrong = client.POST('/v1/models/iris/predict', { body: { features: { sepal_length: '5.1', sepal_width: 3.5, petal_length: 1.4, petal_width: 0.2 } } });
`,
  'wrong-feature-count.ts': `${IMPORT}
export const wrong = client.POST('/v1/models/iris/predict', { body: { features: [5.1, 3.5, 1.4] } });
`,
  'wrong-v2-input.ts': `${IMPORT}
export const wrong = client.POST('/v2/models/iris/infer', { body: { inputs: [{ name: 'float_inptu', shape: [1, 4], datatype: 'FP32', data: [5.1, 3.5, 1.4, 0.2] }] } });
`,
  'wrong-label.ts': `${IMPORT}
export async function wrong(): Promise<void> {
  const { data } = await client.POST('/v1/models/iris/predict', { body: { features: [5.1, 3.5, 1.4, 0.2] } });
  if (data?.label === 'rose') console.log('never');
}
`,
};

describe('TypeScript SDK (clients/typescript)', () => {
  let app: INestApplication;
  let baseUrl: string;
  let work: string;

  beforeAll(async () => {
    app = await startApp();
    await app.listen(0, '127.0.0.1');
    baseUrl = await app.getUrl();
    work = await fs.mkdtemp(path.join(os.tmpdir(), 'sdk-test-'));
  });
  afterAll(async () => {
    await app?.close();
    if (work) await fs.rm(work, { recursive: true, force: true });
  });

  it('is what npm run sdk generates from the live document now (the committed client is not stale)', async () => {
    const out = path.join(work, 'generated');
    // Asynchronously: the service answering the generator runs in this very process.
    await run(
      process.execPath,
      [
        '-r',
        'ts-node/register/transpile-only',
        path.join(ROOT, 'clients', 'generate.ts'),
        '--url',
        baseUrl,
        '--out',
        out,
      ],
      { cwd: ROOT },
    );
    const [generated, committed] = await Promise.all([
      fs.readFile(path.join(out, 'schema.ts'), 'utf8'),
      fs.readFile(path.join(CLIENT, 'src', 'schema.ts'), 'utf8'),
    ]);
    expect(generated).toContain('predictIris');
    // If this fails, run `npm run sdk` and commit clients/typescript.
    expect(generated === committed).toBe(true);
  });

  it('compiles with strict TypeScript, and a wrong feature name, a missing one, a string, a wrong count or label does not compile', async () => {
    for (const [name, text] of Object.entries(SNIPPETS)) await fs.writeFile(path.join(work, name), text);
    const diagnostics = typeCheck(SNIPPETS, work);
    expect(diagnostics['right.ts']).toEqual([]);
    expect(diagnostics['wrong-feature-name.ts'].join('\n')).toMatch(/'sepal_lenght' does not exist/);
    expect(diagnostics['missing-feature.ts'].join('\n')).toMatch(/'petal_width' is missing/);
    expect(diagnostics['string-feature.ts'].join('\n')).toMatch(/'string' is not assignable to type 'number'/);
    expect(diagnostics['wrong-feature-count.ts'].join('\n')).toMatch(/Source has 3 element\(s\) but target requires 4/);
    expect(diagnostics['wrong-label.ts'].join('\n')).toMatch(/no overlap/);
    expect(diagnostics['wrong-v2-input.ts'].join('\n')).toMatch(
      /'"float_inptu"' is not assignable to type '"float_input"'/,
    );
    expect(Object.keys(diagnostics).sort()).toEqual(Object.keys(SNIPPETS).sort());
  });

  describe('against the running service', () => {
    let client: InferenceClient;
    beforeAll(() => {
      client = createClient({ baseUrl });
    });

    it('predicts one instance by feature name and by feature array, with typed answers', async () => {
      const flower: Schemas['IrisFeatures'] = {
        sepal_length: 5.1,
        sepal_width: 3.5,
        petal_length: 1.4,
        petal_width: 0.2,
      };
      const named = await client.POST('/v1/models/iris/predict', { body: { features: flower } });
      expect(named.response.status).toBe(200);
      expect(named.data).toMatchObject({ model: 'iris', version: 1, label: 'setosa', prediction: 0 });
      expect(named.data!.outputs.output_probability).toHaveLength(3);
      const array = await client.POST('/v1/models/iris/predict', { body: { features: [6.3, 3.3, 6.0, 2.5] } });
      expect(array.data?.label).toBe('virginica');
    });

    it('predicts a batch in mixed forms, in order', async () => {
      const { data, response } = await client.POST('/v1/models/iris/predict/batch', {
        body: {
          instances: [
            [5.1, 3.5, 1.4, 0.2],
            { sepal_length: 7.0, sepal_width: 3.2, petal_length: 4.7, petal_width: 1.4 },
            { inputs: { float_input: [6.3, 3.3, 6.0, 2.5] } },
          ],
        },
      });
      expect(response.status).toBe(200);
      expect(data!.predictions.map((p) => p.label)).toEqual(['setosa', 'versicolor', 'virginica']);
    });

    it('reaches the generic routes with path parameters: another model, a given version, metadata', async () => {
      const digits = await client.POST('/v1/models/{model}/versions/{version}/predict', {
        params: { path: { model: 'digits', version: 1 } },
        body: { features: Array.from({ length: 64 }, () => 0) },
      });
      expect(digits.response.status).toBe(200);
      expect(digits.data?.model).toBe('digits');
      const models = await client.GET('/v1/models');
      expect(models.data?.models.map((m) => m.name).sort()).toEqual(['digits', 'iris']);
    });

    it('runs Open Inference Protocol (V2) inference', async () => {
      const { data, response } = await client.POST('/v2/models/{model}/infer', {
        params: { path: { model: 'iris' } },
        body: {
          id: 'sdk-1',
          inputs: [
            { name: 'float_input', shape: [2, 4], datatype: 'FP32', data: [5.1, 3.5, 1.4, 0.2, 6.3, 3.3, 6.0, 2.5] },
          ],
          outputs: [{ name: 'output_label' }],
        },
      });
      expect(response.status).toBe(200);
      expect(data).toMatchObject({
        model_name: 'iris',
        id: 'sdk-1',
        outputs: [{ name: 'output_label', shape: [2], data: [0, 2] }],
      });
    });

    it('returns errors typed, with their stable codes', async () => {
      const unknown = await client.POST('/v1/models/{model}/predict', {
        params: { path: { model: 'rose' } },
        body: { features: [1, 2, 3, 4] },
      });
      expect(unknown.response.status).toBe(404);
      expect(unknown.error?.error).toBe('MODEL_NOT_FOUND');
      // Wrong on purpose, past the types: the server still says where.
      const invalid = await client.POST('/v1/models/iris/predict', {
        body: { features: [1, 2, 3] as unknown as Schemas['IrisFeatureArray'] },
      });
      expect(invalid.response.status).toBe(400);
      expect(invalid.error).toMatchObject({
        error: 'INVALID_INPUT',
        details: [{ path: 'features', message: expect.stringMatching(/expected shape \[4\]/) }],
      });
      const v2 = await client.POST('/v2/models/{model}/infer', {
        params: { path: { model: 'rose' } },
        body: { inputs: [{ name: 'x', shape: [1], datatype: 'FP32', data: [1] }] },
      });
      expect(v2.response.status).toBe(404);
      expect(v2.error?.error).toMatch(/rose/);
    });

    it('sends headers given to the client with every request (an API key would go the same way)', async () => {
      const tagged = createClient({ baseUrl, headers: { 'X-Request-Id': 'sdk-e2e-42' } });
      const { response } = await tagged.GET('/v1/models/{model}', { params: { path: { model: 'iris' } } });
      expect(response.status).toBe(200);
      expect(response.headers.get('x-request-id')).toBe('sdk-e2e-42');
    });
  });
});
