/** A call did not answer in time; the caller goes on without it. */
export class TimeoutError extends Error {}

/** The promise's outcome, or a TimeoutError after `ms`; `what` names the limit in the message. */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(`no answer within ${ms} ms (${what})`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
