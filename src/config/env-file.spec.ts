import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { parseEnv } from 'node:util';
import { AppConfig, CONFIG_KEYS, loadConfig } from './app.config';
import { loadEnvFile } from './env-file';
import { ROOT } from '../testing/model-repository';

/** Settings whose default depends on the machine: the example names them without a value. */
const COMPUTED = new Set<string>(['INFERENCE_WORKERS']);

describe('.env.example', () => {
  const text = readFileSync(path.join(ROOT, '.env.example'), 'utf8');
  const settings = text
    .split('\n')
    .map((line) => /^# ([A-Z][A-Z0-9_]*)=(.*)$/.exec(line))
    .filter((m): m is RegExpExecArray => m !== null)
    .map(([, key, value]) => ({ key, value }));

  it('names every setting of AppConfig once, and nothing else', () => {
    expect(settings.map((s) => s.key).sort()).toEqual([...CONFIG_KEYS].sort());
  });

  it('gives each setting its default (none for the optional ones and the machine-dependent ones)', () => {
    const defaults = new AppConfig() as unknown as Record<string, unknown>;
    for (const { key, value } of settings) {
      const value_ = defaults[key] as string | number | boolean | undefined;
      const expected = value_ === undefined || COMPUTED.has(key) ? '' : String(value_);
      expect({ key, value }).toEqual({ key, value: expected });
    }
  });

  it('leaves every line commented, so a copy changes nothing, and uncommented it is a valid configuration', () => {
    expect(Object.keys(parseEnv(text))).toEqual([]);
    const uncommented = parseEnv(settings.map(({ key, value }) => `${key}=${value}`).join('\n'));
    expect(loadConfig(uncommented)).toEqual(loadConfig({}));
  });
});

describe('loadEnvFile', () => {
  const saved = { ...process.env };
  afterEach(() => {
    for (const key of Object.keys(process.env)) if (!(key in saved)) delete process.env[key];
    Object.assign(process.env, saved);
  });

  const envFile = (text: string) => {
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'env-')), '.env');
    writeFileSync(file, text);
    return file;
  };

  it('reads ENV_FILE into the environment, where variables already set win', () => {
    process.env.ENV_FILE = envFile('ENV_FILE_SPEC_A=from-file\nENV_FILE_SPEC_B="quoted value"\n');
    process.env.ENV_FILE_SPEC_A = 'from-environment';
    expect(loadEnvFile()).toBe(process.env.ENV_FILE);
    expect(process.env.ENV_FILE_SPEC_A).toBe('from-environment');
    expect(process.env.ENV_FILE_SPEC_B).toBe('quoted value');
  });

  it('reads nothing for an empty ENV_FILE, and refuses a named file that is missing', () => {
    process.env.ENV_FILE = '';
    expect(loadEnvFile()).toBeUndefined();
    process.env.ENV_FILE = '/no/such/dir/.env';
    expect(() => loadEnvFile()).toThrow(/ENV_FILE \/no\/such\/dir\/\.env does not exist/);
  });

  it('reads .env from the working directory when ENV_FILE is unset, and nothing when there is none', () => {
    delete process.env.ENV_FILE;
    const cwd = process.cwd();
    const dir = path.dirname(envFile('ENV_FILE_SPEC_C=here\n'));
    try {
      process.chdir(dir);
      expect(loadEnvFile()).toBe('.env');
      expect(process.env.ENV_FILE_SPEC_C).toBe('here');
      process.chdir(mkdtempSync(path.join(tmpdir(), 'no-env-')));
      expect(loadEnvFile()).toBeUndefined();
    } finally {
      process.chdir(cwd);
    }
  });
});
