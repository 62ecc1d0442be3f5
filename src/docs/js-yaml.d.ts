// js-yaml ships no types; this is the one function the docs use (the same call @nestjs/swagger makes).
declare module 'js-yaml' {
  export function dump(value: unknown, options?: { skipInvalid?: boolean; noRefs?: boolean }): string;
}
