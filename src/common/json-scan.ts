import { DomainError, InvalidInputError } from './domain.errors';
import { FORBIDDEN_KEYS, MAX_JSON_DEPTH } from './json-guard';
import { objectSlot } from './object-slot';

/** What a body may cost to parse: arrays and objects (and object keys), and the elements of one array. */
export interface JsonCostLimits {
  /** MAX_JSON_CONTAINERS: arrays and objects in the whole body; object keys are counted against it apart. */
  readonly maxContainers: number;
  /** MAX_ARRAY_LENGTH. */
  readonly maxArrayLength: number;
  /** MAX_STRING_LENGTH, in characters, for strings and object keys alike. */
  readonly maxStringLength: number;
  /**
   * Array elements and object members in the whole body (counted as the commas between them), where the
   * route knows how many it can take (http/element-budget.ts), and why, for the refusal.
   */
  readonly maxElements?: number;
  readonly elementsReason?: string;
}

/** Bodies parsed after this scan, so that nothing walks them a second time for the same hazards. */
const SCANNED = objectSlot<true>('jsonCostScanned');

/** Marks a body parsed from bytes that JsonCostScan let through. */
export function markScanned(body: unknown): void {
  if (typeof body === 'object' && body !== null) SCANNED.set(body, true);
}

/** Whether a body came through JsonCostScan, which has bounded everything json-guard would. */
export const wasScanned = (body: unknown): boolean =>
  typeof body === 'object' && body !== null && SCANNED.get(body) === true;

const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const LETTER_U = 0x75;

/**
 * The open arrays and objects, outermost first, as columns indexed by depth: a hostile body opens and
 * closes a container every two bytes, so none is an object of its own.
 */
class Levels {
  depth = 0;
  // Plain arrays filled in order (cheaper to make per request than typed arrays, and as fast to index).
  readonly isArray: boolean[] = [];
  /** Commas seen at each level: the index of the current element. */
  readonly commas: number[] = [];
  /** Each object's current key: its bytes, quotes included, decoded only to name a path in an error. */
  readonly key: (Uint8Array | undefined)[] = [];
  readonly keyStart: number[] = [];
  readonly keyEnd: number[] = [];

  /** The path to the current element of the first `depth` levels, as an error names it. */
  pathOf(depth = this.depth): string {
    let path = '';
    for (let d = 0; d < depth; d++) {
      const key = this.key[d];
      if (this.isArray[d]) {
        path += `[${this.commas[d]}]`;
      } else if (key !== undefined) {
        const text = decodeString(key, this.keyStart[d], this.keyEnd[d]) ?? '?';
        // Bounded: the path goes into an answer and a log line, never the whole of a hostile key.
        path += `.${text.slice(0, 64)}`;
      }
    }
    return path.replace(/^\./, '') || 'body';
  }
}

/** The bytes the scan acts on outside strings; every other byte is skipped with one lookup. */
const STRUCTURAL = new Uint8Array(256);
for (const byte of [OPEN_ARRAY, CLOSE_ARRAY, OPEN_OBJECT, CLOSE_OBJECT, QUOTE, COMMA, COLON]) STRUCTURAL[byte] = 1;

/** A string's text from its bytes, quotes included; undefined when it is not valid JSON (JSON.parse will say). */
function decodeString(bytes: Uint8Array, start: number, end: number): string | undefined {
  try {
    return JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset + start, end - start + 1).toString('utf8')) as string;
  } catch {
    return undefined;
  }
}

const invalid = (path: string, message: string) =>
  new InvalidInputError('The request body is invalid', [{ path, message }]);

const tooManyContainers = (limit: number, what: string) =>
  new DomainError(
    'PAYLOAD_TOO_LARGE',
    `The body has more than ${limit} ${what} (MAX_JSON_CONTAINERS); send large tensors with the binary tensor ` +
      `extension on /v2, or fewer instances per request`,
  );

const tooManyElements = (limit: number, reason = 'the route takes no more') =>
  new DomainError(
    'PAYLOAD_TOO_LARGE',
    `The body has more than ${limit} values (array elements and object members), more than this route can ` +
      `take: ${reason}; check the body's shape`,
  );

/**
 * What a JSON body costs to parse, bounded by the settings and not by what an attacker can fit in
 * BODY_LIMIT: one pass over its bytes before JSON.parse sees them, fed chunk by chunk as they arrive so
 * that a body is refused as soon as the scan reaches what is wrong with it, without reading the rest.
 * Refused: nesting deeper than MAX_JSON_DEPTH, more than MAX_JSON_CONTAINERS arrays and objects (or object
 * keys), an array longer than MAX_ARRAY_LENGTH, a string or key longer than MAX_STRING_LENGTH characters,
 * a prototype key, and more values than the route can take where it says (maxElements). Whether
 * the text is valid JSON is still JSON.parse's to say. A body that passes is marked (markScanned) so that
 * the validation pipe does not walk it again for the same hazards.
 */
export class JsonCostScan {
  private readonly levels = new Levels();
  private containers = 0;
  private keys = 0;
  private elements = 0;
  private expectKey = false;
  /** A string begun in an earlier chunk: its UTF-16 length so far, and whether a backslash ended that chunk. */
  private inString = false;
  private afterBackslash = false;
  private isKey = false;
  private escaped = false;
  private units = 0;
  /** The bytes, from its opening quote, of a key begun in an earlier chunk. */
  private keyHead: Uint8Array[] = [];

  constructor(private readonly limits: JsonCostLimits) {}

  /** Scans the next chunk of the body; the error to answer with once one is found. */
  feed(bytes: Uint8Array): DomainError | undefined {
    const n = bytes.length;
    let i = 0;
    if (this.inString) {
      i = this.stringEnd(bytes, 0);
      if (i === n) return this.stringGoesOn(bytes, 0);
      const refused = this.endString(bytes, 0, i);
      if (refused) return refused;
      i++;
    }
    const levels = this.levels;
    const { isArray, commas } = levels;
    const { maxContainers, maxArrayLength } = this.limits;
    const maxElements = this.limits.maxElements ?? Infinity;
    let depth = levels.depth;
    let containers = this.containers;
    let keys = this.keys;
    let elements = this.elements;
    let expectKey = this.expectKey;
    let refused: DomainError | undefined;
    for (; i < n; i++) {
      const byte = bytes[i];
      if (STRUCTURAL[byte] === 0) continue;
      if (byte === QUOTE) {
        const start = i;
        this.isKey = expectKey;
        this.escaped = false;
        this.units = 0;
        levels.depth = depth;
        i = this.stringEnd(bytes, i + 1);
        expectKey = false;
        if (i === n) {
          refused = this.stringGoesOn(bytes, start);
          break;
        }
        refused = this.endString(bytes, start, i);
        if (refused) break;
      } else if (byte === OPEN_ARRAY || byte === OPEN_OBJECT) {
        if (depth >= MAX_JSON_DEPTH) {
          levels.depth = depth;
          refused = invalid(levels.pathOf(), `nested deeper than ${MAX_JSON_DEPTH} levels`);
          break;
        }
        if (++containers > maxContainers) {
          refused = tooManyContainers(maxContainers, 'arrays and objects');
          break;
        }
        const array = byte === OPEN_ARRAY;
        isArray[depth] = array;
        commas[depth] = 0;
        levels.key[depth] = undefined;
        depth++;
        expectKey = !array;
      } else if (byte === CLOSE_ARRAY || byte === CLOSE_OBJECT) {
        if (depth > 0) depth--;
        expectKey = false;
      } else if (byte === COMMA) {
        const top = depth - 1;
        if (top < 0) continue;
        const count = ++commas[top];
        if (++elements > maxElements) {
          refused = tooManyElements(maxElements, this.limits.elementsReason);
          break;
        }
        if (!isArray[top]) {
          expectKey = true;
        } else if (count >= maxArrayLength) {
          levels.depth = depth;
          refused = invalid(
            levels.pathOf(top),
            `an array of more than ${maxArrayLength} elements; the limit is ${maxArrayLength} (MAX_ARRAY_LENGTH)`,
          );
          break;
        }
      } else if (++keys > maxContainers) {
        // A colon: one more key.
        refused = tooManyContainers(maxContainers, 'object keys');
        break;
      }
    }
    levels.depth = depth;
    this.containers = containers;
    this.keys = keys;
    this.elements = elements;
    this.expectKey = expectKey;
    return refused;
  }

  /**
   * Where the string being scanned ends (its closing quote), or the chunk's length; counts its length in
   * UTF-16 units as JSON.parse would make it: a multi-byte character once (twice past U+FFFF), an escape once.
   */
  private stringEnd(bytes: Uint8Array, from: number): number {
    const n = bytes.length;
    let units = this.units;
    let afterBackslash = this.afterBackslash;
    let i = from;
    for (; i < n; i++) {
      const c = bytes[i];
      if (afterBackslash) {
        afterBackslash = false;
        // \uXXXX is one unit; its four hex digits are counted as they come.
        units += c === LETTER_U ? -3 : 1;
      } else if (c === QUOTE) {
        break;
      } else if (c === BACKSLASH) {
        afterBackslash = true;
        this.escaped = true;
      } else if ((c & 0xc0) !== 0x80) {
        units += c >= 0xf0 ? 2 : 1;
      }
    }
    this.units = units;
    this.afterBackslash = afterBackslash;
    return i;
  }

  /** A string the chunk ends inside: refused already if too long, else kept (a key's bytes) for the next chunk. */
  private stringGoesOn(bytes: Uint8Array, start: number): DomainError | undefined {
    this.inString = true;
    if (this.units > this.limits.maxStringLength) return this.tooLong(`more than ${this.limits.maxStringLength}`);
    if (this.isKey) this.keyHead.push(bytes.subarray(start));
    return undefined;
  }

  private endString(bytes: Uint8Array, start: number, end: number): DomainError | undefined {
    this.inString = false;
    if (this.units > this.limits.maxStringLength) return this.tooLong(String(this.units));
    if (!this.isKey) return undefined;
    const levels = this.levels;
    const top = levels.depth - 1;
    if (this.keyHead.length === 0) {
      levels.key[top] = bytes;
      levels.keyStart[top] = start;
      levels.keyEnd[top] = end;
    } else {
      const key = Buffer.concat([...this.keyHead, bytes.subarray(0, end + 1)]);
      this.keyHead = [];
      levels.key[top] = key;
      levels.keyStart[top] = 0;
      levels.keyEnd[top] = key.length - 1;
    }
    if (!this.escaped && this.units !== 9 && this.units !== 11) return undefined;
    const text = decodeString(levels.key[top], levels.keyStart[top], levels.keyEnd[top]);
    return text !== undefined && FORBIDDEN_KEYS.has(text)
      ? invalid(levels.pathOf(), 'this key is not allowed')
      : undefined;
  }

  /** A string or key past MAX_STRING_LENGTH: `length` is its length, or "more than" the limit for one not yet ended. */
  private tooLong(length: string): DomainError {
    const what = this.isKey ? 'a key' : 'a string';
    return invalid(
      this.levels.pathOf(this.isKey ? this.levels.depth - 1 : this.levels.depth),
      `${what} of ${length} characters; the limit is ${this.limits.maxStringLength} (MAX_STRING_LENGTH)`,
    );
  }
}

/** The whole body at once: see JsonCostScan. */
export const checkJsonCost = (bytes: Uint8Array, limits: JsonCostLimits): DomainError | undefined =>
  new JsonCostScan(limits).feed(bytes);
