import { ErrorDetail } from './domain.errors';

/** Keys that address an object's prototype. Nothing a client sends may use them. */
export const FORBIDDEN_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

/** Deeper than any tensor a client could mean to send; deep enough that recursion elsewhere is safe. */
export const MAX_JSON_DEPTH = 32;

/** Bounds on a body's arrays and strings (MAX_ARRAY_LENGTH, MAX_STRING_LENGTH). */
export interface JsonLimits {
  readonly maxArrayLength: number;
  readonly maxStringLength: number;
}

interface Node {
  readonly value: unknown;
  readonly depth: number;
  readonly parent: number;
  readonly key: string | number;
}

function pathOf(nodes: readonly Node[], index: number): string {
  const parts: string[] = [];
  for (let i = index; i > 0; i = nodes[i].parent) {
    const key = nodes[i].key;
    parts.unshift(typeof key === 'number' ? `[${key}]` : `.${key}`);
  }
  return parts.join('').replace(/^\./, '') || 'body';
}

/**
 * Finds the first thing in a parsed JSON body that no route accepts: nesting deeper than
 * MAX_JSON_DEPTH, a prototype key, an array or a string over its limit. Iterative, so a hostile
 * depth cannot exhaust the stack; the limits are checked before anything walks or copies the body.
 */
export function findJsonHazard(body: unknown, limits: JsonLimits): ErrorDetail | undefined {
  const nodes: Node[] = [{ value: body, depth: 0, parent: -1, key: '' }];
  for (let i = 0; i < nodes.length; i++) {
    const { value, depth } = nodes[i];
    if (typeof value === 'string') {
      if (value.length > limits.maxStringLength) {
        return {
          path: pathOf(nodes, i),
          message: `a string of ${value.length} characters; the limit is ${limits.maxStringLength} (MAX_STRING_LENGTH)`,
        };
      }
      continue;
    }
    if (typeof value !== 'object' || value === null) continue;
    if (depth >= MAX_JSON_DEPTH)
      return { path: pathOf(nodes, i), message: `nested deeper than ${MAX_JSON_DEPTH} levels` };
    if (Array.isArray(value)) {
      if (value.length > limits.maxArrayLength) {
        return {
          path: pathOf(nodes, i),
          message: `an array of ${value.length} elements; the limit is ${limits.maxArrayLength} (MAX_ARRAY_LENGTH)`,
        };
      }
      for (let k = 0; k < value.length; k++)
        nodes.push({ value: value[k] as unknown, depth: depth + 1, parent: i, key: k });
    } else {
      for (const key of Object.keys(value)) {
        if (key.length > limits.maxStringLength) {
          return {
            path: pathOf(nodes, i),
            message: `a key of ${key.length} characters; the limit is ${limits.maxStringLength} (MAX_STRING_LENGTH)`,
          };
        }
        if (FORBIDDEN_KEYS.has(key))
          return {
            path: pathOf([...nodes, { value: null, depth, parent: i, key }], nodes.length),
            message: 'this key is not allowed',
          };
        nodes.push({ value: (value as Record<string, unknown>)[key], depth: depth + 1, parent: i, key });
      }
    }
  }
  return undefined;
}
