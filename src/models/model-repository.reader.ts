import { MODEL_NAME, VERSION } from '../common/model-names';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { ModelConfig, parseModelConfig, routingProblem, selectVersions } from './model-config';

/** A model folder as found on disk, before anything is loaded. */
export interface ModelFolder {
  readonly name: string;
  readonly config: ModelConfig;
  /** Set when config.json exists but is unusable: the whole model is then FAILED with this reason. */
  readonly configError?: string;
  readonly versions: readonly { readonly version: number; readonly file: string; readonly missing?: string }[];
  /** Entries that were skipped, with why; logged as warnings. */
  readonly ignored: readonly string[];
}

async function exists(file: string): Promise<boolean> {
  return fs.stat(file).then(
    (s) => s.isFile(),
    () => false,
  );
}

/**
 * Reads a Triton-style repository: `<root>/<model>/<version>/model.onnx` plus an optional
 * `<root>/<model>/config.json`. Never throws for a bad model folder; only a missing root is fatal.
 */
export async function readModelRepository(
  root: string,
  skipped: (why: string) => void = () => undefined,
): Promise<ModelFolder[]> {
  const stat = await fs.stat(root).catch(() => undefined);
  if (!stat?.isDirectory()) {
    throw new Error(`MODEL_REPOSITORY ${root} is not a directory`);
  }
  const entries = await fs.readdir(root, { withFileTypes: true });
  const folders: ModelFolder[] = [];
  const realRoot = await fs.realpath(root);
  for (const entry of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    if (entry.name.startsWith('.') || !MODEL_NAME.test(entry.name)) continue;
    if (entry.isSymbolicLink()) {
      const why = await symlinkProblem(realRoot, path.join(root, entry.name));
      if (why) {
        skipped(`${entry.name}: skipped, ${why}`);
        continue;
      }
    } else if (!entry.isDirectory()) continue;
    folders.push(await readModelFolder(root, entry.name));
  }
  return folders;
}

/**
 * Why a model folder that is a symbolic link is not served, if it is not: one that leads out of the
 * repository would serve files the operator never put in it (a link made by whoever can write there).
 */
async function symlinkProblem(realRoot: string, link: string): Promise<string | undefined> {
  const target = await fs.realpath(link).catch(() => undefined);
  if (target === undefined) return 'a symbolic link to nothing';
  const inside = path.relative(realRoot, target);
  if (inside === '' || inside.startsWith('..') || path.isAbsolute(inside)) {
    return 'a symbolic link out of the model repository';
  }
  const stat = await fs.stat(target);
  return stat.isDirectory() ? undefined : 'a symbolic link to something not a folder';
}

/** One model folder; the folder must exist. */
export async function readModelFolder(root: string, name: string): Promise<ModelFolder> {
  const dir = path.join(root, name);
  const configFile = path.join(dir, 'config.json');
  let config: ModelConfig = {};
  let configError: string | undefined;
  if (await exists(configFile)) {
    try {
      config = parseModelConfig(await fs.readFile(configFile, 'utf8'), path.join(name, 'config.json'));
    } catch (err) {
      configError = (err as Error).message;
    }
  }
  const versions: { version: number; file: string; missing?: string }[] = [];
  const ignored: string[] = [];
  for (const entry of await fs.readdir(dir, { withFileTypes: true })) {
    if (!entry.isDirectory()) continue;
    if (!VERSION.test(entry.name)) {
      ignored.push(`${name}/${entry.name}: not a version folder (versions are positive integers)`);
      continue;
    }
    const file = path.join(dir, entry.name, 'model.onnx');
    versions.push({
      version: Number(entry.name),
      file,
      missing: (await exists(file)) ? undefined : `${name}/${entry.name}/model.onnx is missing`,
    });
  }
  versions.sort((a, b) => a.version - b.version);
  const served = selectVersions(
    config.version_policy,
    versions.map((v) => v.version),
  );
  for (const v of versions.filter((v) => !served.includes(v.version))) {
    ignored.push(`${name}/${v.version}: not served (config.json version_policy)`);
  }
  // Labels and weights must name versions that this folder serves: checked here, so that a reload
  // refuses them as it refuses any bad config.json, and what served before keeps serving.
  configError ??= routingProblem(config, served, path.join(name, 'config.json'));
  return { name, config, configError, versions: versions.filter((v) => served.includes(v.version)), ignored };
}
