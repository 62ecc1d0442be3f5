import { existsSync, readFileSync } from 'node:fs';
import { parseEnv } from 'node:util';

/**
 * Reads a `.env` file into process.env before the configuration is validated, so that a developer's
 * settings need no shell exports. Variables already set win over the file (Node's rule for env
 * files), so a deployment's environment is never overridden by a stray file. ENV_FILE names another
 * file, which must then exist; an empty ENV_FILE reads none. Answers the file read, if any.
 */
export function loadEnvFile(): string | undefined {
  const named = process.env.ENV_FILE;
  if (named === '') return undefined;
  const file = named ?? '.env';
  if (!existsSync(file)) {
    if (named !== undefined) throw new Error(`ENV_FILE ${named} does not exist`);
    return undefined;
  }
  // Node's own parser (that of --env-file), applied here rather than by process.loadEnvFile so
  // that the rule "already set wins" is this code's, visible and tested.
  for (const [key, value] of Object.entries(parseEnv(readFileSync(file, 'utf8'))))
    if (process.env[key] === undefined) process.env[key] = value;
  return file;
}
