/**
 * Regenerates the TypeScript SDK's types (clients/typescript/src/schema.ts) from the live OpenAPI
 * document, with openapi-typescript:
 *
 *   npm run sdk                                   the bundled models, served in-process for the purpose
 *   npm run sdk -- --url http://host:8000         a running service instead
 *   npm run sdk -- --out some/dir                 write some/dir/schema.ts instead
 *
 * The document holds each READY model's typed routes, so the SDK is as good as the models served
 * when it was generated: the committed one comes from the bundled repository.
 */
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';

const ROOT = path.resolve(__dirname, '..');
export const SDK_SCHEMA = path.join(ROOT, 'clients', 'typescript', 'src', 'schema.ts');
/** Tuples for fixed-length arrays (feature counts), and a named type alias for each schema. */
const GENERATOR_FLAGS = ['--array-length', '--root-types', '--root-types-no-schema-prefix'];

function option(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

/** Serves the bundled models in this process, long enough to read the document. */
async function bundledDocument(): Promise<unknown> {
  // Loaded here only: --url needs none of the service.
  const { createApp } = await import('../src/app.factory');
  const { loadConfig } = await import('../src/config/app.config');
  const { ModelRegistry } = await import('../src/models/model.registry');
  const app = await createApp(
    // The document is all that is read: no gRPC server, so nothing else on this machine is in its way.
    loadConfig({
      MODEL_REPOSITORY: path.join(ROOT, 'models'),
      LOG_LEVEL: 'error',
      HTTP_ADAPTER: 'fastify',
      GRPC_ENABLED: 'false',
    }),
  );
  try {
    await app.listen(0, '127.0.0.1');
    await app.get(ModelRegistry).whenLoaded();
    return await fetchDocument(await app.getUrl());
  } finally {
    await app.close();
  }
}

async function fetchDocument(baseUrl: string): Promise<unknown> {
  const res = await fetch(new URL('/docs-json', baseUrl));
  if (!res.ok) throw new Error(`GET ${baseUrl}/docs-json answered ${res.status}`);
  return res.json();
}

/** Writes `<outDir>/schema.ts` generated from the document; returns its path. */
export async function generate(document: unknown, outDir: string): Promise<string> {
  const work = await fs.mkdtemp(path.join(os.tmpdir(), 'sdk-'));
  try {
    const input = path.join(work, 'openapi.json');
    await fs.writeFile(input, JSON.stringify(document));
    const out = path.join(outDir, 'schema.ts');
    await fs.mkdir(outDir, { recursive: true });
    // The CLI, not the library: the library is ESM-first, and this runs under CommonJS.
    const cli = path.join(ROOT, 'node_modules', 'openapi-typescript', 'bin', 'cli.js');
    await promisify(execFile)(process.execPath, [cli, input, '--output', out, ...GENERATOR_FLAGS]);
    return out;
  } finally {
    await fs.rm(work, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const url = option('--url');
  const outDir = path.resolve(option('--out') ?? path.dirname(SDK_SCHEMA));
  const document = url ? await fetchDocument(url) : await bundledDocument();
  const out = await generate(document, outDir);
  console.log(`wrote ${path.relative(process.cwd(), out)} from ${url ?? 'the bundled models'}`);
}

if (require.main === module) {
  main().then(
    () => process.exit(0),
    (err: Error) => {
      console.error(`sdk: ${err.message}`);
      process.exit(1);
    },
  );
}
