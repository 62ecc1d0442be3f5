import { INestApplication } from '@nestjs/common';
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import * as ts from 'typescript';
import { ERROR_CODES } from '../src/common/domain.errors';
import { ROOT, startApp } from './support/app';

const run = promisify(execFile);

/** The tools run offline: no telemetry, no update check. */
const OFFLINE = { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true', CI: 'true' };

const REDOCLY = path.join(ROOT, 'node_modules', '@redocly', 'cli', 'bin', 'cli.js');
const HEY_API = path.join(ROOT, 'node_modules', '@hey-api', 'openapi-ts', 'bin', 'run.js');

/** The documents users point their tools at: the service's, and each model's own. */
const DOCUMENTS = ['/docs-json', '/v1/models/iris/openapi.json', '/v1/models/digits/openapi.json'];

/** Strict settings for the generated SDK, as a browser or Node 18+ project (fetch in the DOM library) compiles it. */
const STRICT: ts.CompilerOptions = {
  target: ts.ScriptTarget.ES2022,
  lib: ['lib.es2022.d.ts', 'lib.dom.d.ts', 'lib.dom.iterable.d.ts'],
  module: ts.ModuleKind.ESNext,
  moduleResolution: ts.ModuleResolutionKind.Bundler,
  strict: true,
  noUncheckedIndexedAccess: true,
  skipLibCheck: true,
  noEmit: true,
  types: [],
};

function diagnosticsOf(files: string[]): Record<string, string[]> {
  const program = ts.createProgram(files, STRICT);
  const byFile: Record<string, string[]> = {};
  for (const d of ts.getPreEmitDiagnostics(program)) {
    const file = d.file ? path.basename(d.file.fileName) : '(global)';
    (byFile[file] ??= []).push(ts.flattenDiagnosticMessageText(d.messageText, '\n'));
  }
  return byFile;
}

describe('the OpenAPI documents, through the tools users run on them', () => {
  let app: INestApplication;
  let baseUrl: string;
  let work: string;
  const files: Record<string, string> = {};

  beforeAll(async () => {
    app = await startApp();
    await app.listen(0, '127.0.0.1');
    baseUrl = (await app.getUrl()).replace('[::1]', '127.0.0.1');
    work = await fs.mkdtemp(path.join(os.tmpdir(), 'openapi-tools-'));
    for (const route of DOCUMENTS) {
      const res = await fetch(`${baseUrl}${route}`);
      expect(res.status).toBe(200);
      const file = path.join(work, `${route.replace(/^\//, '').replace(/[/.]/g, '_')}.json`);
      await fs.writeFile(file, await res.text());
      files[route] = file;
    }
  });
  afterAll(async () => {
    await app?.close();
    if (work) await fs.rm(work, { recursive: true, force: true });
  });

  it.each(DOCUMENTS)(
    '%s passes Redocly’s recommended lint with no error and no warning (redocly.yaml)',
    async (route) => {
      // Asynchronously: the service that served the document runs in this very process.
      const { stdout } = await run(
        process.execPath,
        [REDOCLY, 'lint', '--config', path.join(ROOT, 'redocly.yaml'), '--format', 'json', files[route]],
        { cwd: work, env: OFFLINE, maxBuffer: 16 * 1024 * 1024 },
      ).catch((err: { stdout?: string; stderr?: string }) => {
        // A lint with errors exits 1: its report is still what the assertions read.
        if (err.stdout) return { stdout: err.stdout };
        throw err;
      });
      const report = JSON.parse(stdout.slice(stdout.indexOf('{'))) as {
        totals: { errors: number; warnings: number };
        problems: { ruleId: string; message: string; location: { pointer: string }[] }[];
      };
      const problems = report.problems.map((p) => `${p.ruleId}: ${p.message} at ${p.location[0]?.pointer}`);
      expect(problems).toEqual([]);
      expect(report.totals).toMatchObject({ errors: 0, warnings: 0 });
    },
  );

  it('types the error code as an enum made from the code’s one list, in every document', async () => {
    for (const route of DOCUMENTS) {
      const document = JSON.parse(await fs.readFile(files[route], 'utf8')) as {
        components: { schemas: Record<string, { enum?: string[] }> };
      };
      expect(document.components.schemas.ErrorCode?.enum).toEqual(Object.keys(ERROR_CODES));
    }
  });

  it('generates an SDK with @hey-api/openapi-ts that keeps tuples, compiles strict, refuses a wrong feature count, and predicts', async () => {
    const out = path.join(work, 'hey-api');
    await run(
      process.execPath,
      [HEY_API, '-i', files['/docs-json'], '-o', out, '-c', '@hey-api/client-fetch', '--no-log-file', '--silent'],
      { cwd: work, env: OFFLINE },
    );
    const types = await fs.readFile(path.join(out, 'types.gen.ts'), 'utf8');
    // The feature arrays as tuples of their exact length, where other generators drop the bounds.
    expect(types).toMatch(/export type IrisFeatureArray = \[\s*number,\s*number,\s*number,\s*number\s*\];/);
    expect(types).toMatch(/export type ErrorCode = 'INVALID_INPUT' \| /);

    const use = (name: string, text: string) => {
      const file = path.join(work, name);
      return fs
        .writeFile(
          file,
          `import { createClient } from './hey-api/client';\nimport { predictIris } from './hey-api';\n` + text,
        )
        .then(() => file);
    };
    const right = await use(
      'right.ts',
      `const client = createClient({ baseUrl: 'http://localhost:8000' });
export async function right(): Promise<string | null | undefined> {
  const { data } = await predictIris({ client, body: { features: [5.1, 3.5, 1.4, 0.2] } });
  return data?.label;
}
`,
    );
    const wrong = await use(
      'wrong-count.ts',
      `export const wrong = predictIris({ body: { features: [5.1, 3.5, 1.4] } });\n`,
    );
    const generated = (await fs.readdir(out, { recursive: true }))
      .filter((f) => f.endsWith('.ts'))
      .map((f) => path.join(out, f));
    const diagnostics = diagnosticsOf([...generated, right, wrong]);
    const { 'wrong-count.ts': refused = [], ...rest } = diagnostics;
    expect(rest).toEqual({});
    expect(refused.join('\n')).toMatch(/Source has 3 element\(s\) but target requires 4/);

    // The generated SDK, compiled to CommonJS beside its sources, against this service.
    for (const file of [...generated, right]) {
      const { outputText } = ts.transpileModule(await fs.readFile(file, 'utf8'), {
        compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022 },
      });
      await fs.writeFile(file.replace(/\.ts$/, '.js'), outputText);
    }
    const sdk = (await import(path.join(out, 'index.js'))) as {
      predictIris: (options: object) => Promise<{ data?: { label: string }; response: Response }>;
    };
    const { createClient } = (await import(path.join(out, 'client', 'index.js'))) as {
      createClient: (config: { baseUrl: string }) => object;
    };
    const answer = await sdk.predictIris({
      client: createClient({ baseUrl }),
      body: { features: [6.3, 3.3, 6.0, 2.5] },
    });
    expect(answer.response.status).toBe(200);
    expect(answer.data?.label).toBe('virginica');
  });
});
