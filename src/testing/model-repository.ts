import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/**
 * Model repositories for tests: the bundled models, the fixture models, and throw-away copies of
 * them. Here rather than in test/ so that unit specs in src/ never import from test/; the
 * end-to-end suites get it through test/support/app.ts. tsconfig.build.json keeps it out of dist/.
 */

export const ROOT = path.resolve(__dirname, '..', '..');
export const BUNDLED_MODELS = path.join(ROOT, 'models');
export const FIXTURE_MODELS = path.join(ROOT, 'test', 'fixtures', 'models');

export const fixture = (name: string) => path.join(FIXTURE_MODELS, name);
export const bundled = (name: string) => path.join(BUNDLED_MODELS, name);

/**
 * Makes a throw-away model repository. `models` maps a folder name to the fixture (or bundled)
 * model folder it copies; `files` writes extra files (relative path → contents).
 */
export async function makeRepository(
  models: Record<string, string>,
  files: Record<string, string | Buffer> = {},
): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'model-repo-'));
  for (const [name, source] of Object.entries(models)) {
    await fs.cp(source, path.join(dir, name), { recursive: true });
  }
  for (const [file, contents] of Object.entries(files)) {
    await fs.mkdir(path.dirname(path.join(dir, file)), { recursive: true });
    await fs.writeFile(path.join(dir, file), contents);
  }
  return dir;
}
