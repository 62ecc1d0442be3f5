/**
 * A value carried by an object under a private symbol: what a request (or its body) carries through the
 * layers that handle it. Not a WeakMap keyed by the object: every entry keyed by a short-lived object is an
 * ephemeron the garbage collector must revisit in each young-generation collection it lives through, and a
 * request under load carries several.
 */
export interface ObjectSlot<T> {
  get(owner: object): T | undefined;
  set(owner: object, value: T): void;
}

export function objectSlot<T>(name: string): ObjectSlot<T> {
  const key = Symbol(name);
  return {
    get: (owner) => (owner as { [key]?: T })[key],
    set: (owner, value) => {
      (owner as { [key]?: T })[key] = value;
    },
  };
}
