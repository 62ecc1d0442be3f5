import { createHash } from 'node:crypto';

/**
 * What a key may do. `inference` covers every protected route the service has (metadata, predict,
 * infer, the docs); `admin` is for routes that change the server, such as a model reload.
 */
export const SCOPES = ['inference', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

/** RFC 6750's token68 (what a Bearer token may be), at least 16 characters so a key cannot be guessed. */
const KEY = /^[A-Za-z0-9._~+/-]{16,1024}=*$/;

export interface ApiKeySet {
  /** sha256(key) in hex → the key's scopes. Only hashes are kept, so a heap dump holds no key. */
  readonly keys: ReadonlyMap<string, ReadonlySet<Scope>>;
  /** What is wrong with the text, by entry number; never the key itself. */
  readonly problems: readonly string[];
}

export const hashKey = (key: string): string => createHash('sha256').update(key).digest('hex');

/**
 * Parses API keys: entries separated by commas or new lines, each `<key>` (scope inference) or
 * `<key>:<scope>[+<scope>]`; blank lines and lines starting with `#` are skipped. A problem names
 * the entry by its number, so that a message about a bad key never repeats the key.
 */
export function parseApiKeys(text: string, source: string): ApiKeySet {
  const keys = new Map<string, Set<Scope>>();
  const problems: string[] = [];
  const entries = text
    .split(/\r?\n/)
    .filter((line) => !line.trim().startsWith('#'))
    .flatMap((line) => line.split(','))
    .map((entry) => entry.trim())
    .filter(Boolean);
  entries.forEach((entry, i) => {
    const colon = entry.lastIndexOf(':');
    const key = colon < 0 ? entry : entry.slice(0, colon);
    const scopeText = colon < 0 ? 'inference' : entry.slice(colon + 1);
    if (!KEY.test(key)) {
      problems.push(
        `${source} entry ${i + 1}: a key must be at least 16 characters of letters, digits and -._~+/ (optionally ending in =)`,
      );
      return;
    }
    const scopes = scopeText.split('+').map((s) => s.trim());
    const unknown = scopes.filter((s) => !(SCOPES as readonly string[]).includes(s));
    if (unknown.length > 0) {
      problems.push(
        `${source} entry ${i + 1}: unknown scope ${unknown.map((s) => JSON.stringify(s.slice(0, 20))).join(', ')}; scopes are ${SCOPES.join(', ')}`,
      );
      return;
    }
    const hash = hashKey(key);
    const existing = keys.get(hash) ?? new Set<Scope>();
    for (const s of scopes) existing.add(s as Scope);
    keys.set(hash, existing);
  });
  return { keys, problems };
}
