import { DomainError, InvalidInputError } from './domain.errors';
import { FORBIDDEN_KEYS, MAX_JSON_DEPTH } from './json-guard';

/** What a body may cost to parse: arrays and objects (and object keys), and the elements of one array. */
export interface JsonCostLimits {
  /** MAX_JSON_CONTAINERS: arrays and objects in the whole body; object keys are counted against it apart. */
  readonly maxContainers: number;
  /** MAX_ARRAY_LENGTH. */
  readonly maxArrayLength: number;
  /** MAX_STRING_LENGTH, in characters, for strings and object keys alike. */
  readonly maxStringLength: number;
}

/** Bodies parsed after this scan, so that nothing walks them a second time for the same hazards. */
const SCANNED = new WeakSet<object>();

/** Marks a body parsed from bytes that checkJsonCost let through. */
export function markScanned(body: unknown): void {
  if (typeof body === 'object' && body !== null) SCANNED.add(body);
}

/** Whether a body came through checkJsonCost, which has bounded everything json-guard would. */
export const wasScanned = (body: unknown): boolean => typeof body === 'object' && body !== null && SCANNED.has(body);

const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;

interface Level {
  readonly array: boolean;
  /** Commas seen at this level: the index of the current element. */
  commas: number;
  /** Where the current key's string starts and ends (objects), decoded only to name a path in an error. */
  keyStart: number;
  keyEnd: number;
}

/** A string's text from its bytes, quotes included; undefined when it is not valid JSON (JSON.parse will say). */
function decodeString(bytes: Uint8Array, start: number, end: number): string | undefined {
  try {
    return JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset + start, end - start + 1).toString('utf8')) as string;
  } catch {
    return undefined;
  }
}

function pathOf(bytes: Uint8Array, levels: readonly Level[]): string {
  let path = '';
  for (const level of levels) {
    if (level.array) {
      path += `[${level.commas}]`;
    } else if (level.keyStart >= 0) {
      const key = decodeString(bytes, level.keyStart, level.keyEnd) ?? '?';
      // Bounded: the path goes into an answer and a log line, never the whole of a hostile key.
      path += `.${key.slice(0, 64)}`;
    }
  }
  return path.replace(/^\./, '') || 'body';
}

const tooManyContainers = (limit: number, what: string) =>
  new DomainError(
    'PAYLOAD_TOO_LARGE',
    `The body has more than ${limit} ${what} (MAX_JSON_CONTAINERS); send large tensors with the binary tensor ` +
      `extension on /v2, or fewer instances per request`,
  );

/**
 * One pass over a JSON body's bytes before JSON.parse sees it, so that what a body costs to parse is
 * bounded by the settings and not by what an attacker can fit in BODY_LIMIT: nesting deeper than
 * MAX_JSON_DEPTH, more than MAX_JSON_CONTAINERS arrays and objects (or object keys), an array longer
 * than MAX_ARRAY_LENGTH, a string or key longer than MAX_STRING_LENGTH, or a prototype key is refused as
 * soon as the scan reaches it. Whether the text is valid JSON is still JSON.parse's to say. A body that
 * passes is marked (markScanned) so the validation pipe does not walk it again for the same hazards.
 */
export function checkJsonCost(bytes: Uint8Array, limits: JsonCostLimits): DomainError | undefined {
  const levels: Level[] = [];
  let containers = 0;
  let keys = 0;
  let expectKey = false;
  const n = bytes.length;
  for (let i = 0; i < n; i++) {
    const byte = bytes[i];
    if (byte === QUOTE) {
      const start = i;
      let escaped = false;
      for (i++; i < n; i++) {
        const c = bytes[i];
        if (c === BACKSLASH) {
          escaped = true;
          i++;
        } else if (c === QUOTE) break;
      }
      const refused = checkString(bytes, levels, start, i, escaped, expectKey, limits.maxStringLength);
      if (refused) return refused;
      expectKey = false;
    } else if (byte === OPEN_ARRAY || byte === OPEN_OBJECT) {
      if (levels.length >= MAX_JSON_DEPTH) {
        return new InvalidInputError('The request body is invalid', [
          { path: pathOf(bytes, levels), message: `nested deeper than ${MAX_JSON_DEPTH} levels` },
        ]);
      }
      if (++containers > limits.maxContainers) return tooManyContainers(limits.maxContainers, 'arrays and objects');
      const array = byte === OPEN_ARRAY;
      levels.push({ array, commas: 0, keyStart: -1, keyEnd: -1 });
      expectKey = !array;
    } else if (byte === CLOSE_ARRAY || byte === CLOSE_OBJECT) {
      levels.pop();
      expectKey = false;
    } else if (byte === COMMA) {
      const level = levels[levels.length - 1];
      if (level === undefined) continue;
      level.commas++;
      if (level.array) {
        if (level.commas >= limits.maxArrayLength) {
          return new InvalidInputError('The request body is invalid', [
            {
              path: pathOf(bytes, levels.slice(0, -1)),
              message: `an array of more than ${limits.maxArrayLength} elements; the limit is ${limits.maxArrayLength} (MAX_ARRAY_LENGTH)`,
            },
          ]);
        }
      } else {
        expectKey = true;
      }
    } else if (byte === COLON) {
      if (++keys > limits.maxContainers) return tooManyContainers(limits.maxContainers, 'object keys');
    }
  }
  return undefined;
}

/**
 * A string's bounds, from its bytes: a string no longer in bytes than MAX_STRING_LENGTH is no longer in
 * characters, so only longer ones (and keys with escapes, which could spell a prototype key) are decoded.
 */
function checkString(
  bytes: Uint8Array,
  levels: Level[],
  start: number,
  end: number,
  escaped: boolean,
  isKey: boolean,
  maxStringLength: number,
): DomainError | undefined {
  const byteLength = end - start - 1;
  const level = levels[levels.length - 1];
  if (isKey) {
    level.keyStart = start;
    level.keyEnd = end;
  }
  const long = byteLength > maxStringLength;
  const maybeForbidden = isKey && (escaped || byteLength === 9 || byteLength === 11);
  if (!long && !maybeForbidden) return undefined;
  const text = decodeString(bytes, start, end);
  if (text === undefined) return undefined;
  if (text.length > maxStringLength) {
    const what = isKey ? 'a key' : 'a string';
    return new InvalidInputError('The request body is invalid', [
      {
        path: pathOf(bytes, isKey ? levels.slice(0, -1) : levels),
        message: `${what} of ${text.length} characters; the limit is ${maxStringLength} (MAX_STRING_LENGTH)`,
      },
    ]);
  }
  if (isKey && FORBIDDEN_KEYS.has(text)) {
    return new InvalidInputError('The request body is invalid', [
      { path: pathOf(bytes, levels), message: 'this key is not allowed' },
    ]);
  }
  return undefined;
}
