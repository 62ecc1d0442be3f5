import { hashKey, parseApiKeys } from './api-keys';

describe('parseApiKeys', () => {
  const A = 'aaaaaaaaaaaaaaaa-1';
  const B = 'bbbbbbbbbbbbbbbb.2/+~=';

  it('reads keys separated by commas and lines, with scopes, skipping comments and blanks', () => {
    const { keys, problems } = parseApiKeys(`# rotated monthly\n${A}\n\n${B}:admin+inference, ${A}:admin\n`, 'file');
    expect(problems).toEqual([]);
    expect(keys.size).toBe(2);
    expect([...keys.get(hashKey(A))!].sort()).toEqual(['admin', 'inference']);
    expect([...keys.get(hashKey(B))!].sort()).toEqual(['admin', 'inference']);
  });

  it('keeps only hashes', () => {
    const { keys } = parseApiKeys(A, 'API_KEYS');
    expect([...keys.keys()]).toEqual([hashKey(A)]);
    expect(JSON.stringify([...keys.keys()])).not.toContain(A);
  });

  it('names bad entries by number, never repeating the key', () => {
    const weak = 'tooshort';
    const spaced = 'has a space in it, really';
    const { keys, problems } = parseApiKeys(`${A},${weak},${B}:root,${spaced}`, 'API_KEYS');
    expect(keys.size).toBe(1);
    expect(problems).toEqual([
      expect.stringMatching(/^API_KEYS entry 2: a key must be at least 16 characters/),
      expect.stringMatching(/^API_KEYS entry 3: unknown scope "root"/),
      expect.stringMatching(/^API_KEYS entry 4: a key must be/),
      expect.stringMatching(/^API_KEYS entry 5: a key must be/),
    ]);
    for (const p of problems) {
      expect(p).not.toContain(weak);
      expect(p).not.toContain(B);
    }
  });
});
