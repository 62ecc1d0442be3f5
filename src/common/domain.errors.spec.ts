import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { ERROR_CODES, ErrorCode } from './domain.errors';
import { HTTP_STATUS } from './http-exception.filter';

describe('ERROR_CODES', () => {
  const readme = readFileSync(path.join(__dirname, '..', '..', 'README.md'), 'utf8');
  const rows = [...readme.matchAll(/^\| (\d{3}|4xx) \| `([A-Z_]+)` \|/gm)].map((m) => [m[2], m[1]]);

  it("is the README's table of errors, code for code and status for status", () => {
    const expected = (Object.keys(ERROR_CODES) as ErrorCode[]).map((c) => [
      c,
      c === 'HTTP_ERROR' ? '4xx' : String(HTTP_STATUS[c]),
    ]);
    expect(rows).toEqual(expected);
  });

  it('gives every code an HTTP status in the 4xx or 5xx range', () => {
    for (const code of Object.keys(ERROR_CODES) as ErrorCode[]) {
      expect(HTTP_STATUS[code]).toBeGreaterThanOrEqual(400);
      expect(HTTP_STATUS[code]).toBeLessThan(600);
    }
  });
});
