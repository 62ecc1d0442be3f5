/**
 * How many refusals may wait for their turn at once. Each waiting client holds what it sent meanwhile in
 * the kernel's buffers, so past this many the rest are answered at once, as if pacing were off.
 */
export const MAX_WAITING_REFUSALS = 256;

/** A refusal waiting for its turn: its answer, and whether its client has gone meanwhile. */
interface Waiting {
  readonly answer: () => void;
  readonly gone: () => boolean;
}

/**
 * Paces the answers to requests refused before their body was read (too large, too costly to parse, no
 * valid key). Such an answer closes its connection, since the rest of the body is never read, so a client
 * sending those bodies back to back makes the service accept, parse headers, answer and close a connection
 * for each: several times the work of a good request, taken from everyone else on the event loop.
 *
 * A token bucket of `perSecond` answers (as many in a burst): an occasional refusal is answered at once,
 * and under a flood the rest wait their turn, first come first answered. A waiting client costs nothing:
 * its connection is not read, and TCP holds it once the kernel's buffers are full. A client that sends
 * such bodies one after another is thereby held to its share of `perSecond`; one that opens more
 * connections than MAX_WAITING_REFUSALS at once is answered at once past that, and MAX_CONNECTIONS is
 * what bounds it.
 */
export class RefusalPacer {
  private readonly waiting: Waiting[] = [];
  private tokens: number;
  private refilled = performance.now();
  private timer: NodeJS.Timeout | undefined;

  /**
   * @param perSecond answers per second under a flood, and the burst answered at once; 0: no pacing.
   * @param onDelayed called for each refusal that has to wait (a metric).
   * @param onError what an answer sent in its turn threw: there is no request handler left to take it.
   */
  constructor(
    private readonly perSecond: number,
    private readonly onDelayed: () => void = () => undefined,
    private readonly onError: (err: unknown) => void = () => undefined,
  ) {
    this.tokens = perSecond;
  }

  /**
   * Sends a refusal's answer now if the budget allows, else in its turn; a client gone by then is skipped
   * without spending a turn.
   */
  pace(answer: () => void, gone: () => boolean = () => false): void {
    if (this.perSecond === 0 || this.waiting.length >= MAX_WAITING_REFUSALS) return answer();
    if (this.waiting.length === 0 && this.take()) return answer();
    this.onDelayed();
    this.waiting.push({ answer, gone });
    this.schedule();
  }

  /** Refusals waiting for their turn. */
  get backlog(): number {
    return this.waiting.length;
  }

  private take(): boolean {
    const now = performance.now();
    this.tokens = Math.min(this.perSecond, this.tokens + ((now - this.refilled) * this.perSecond) / 1000);
    this.refilled = now;
    if (this.tokens < 1) return false;
    this.tokens--;
    return true;
  }

  private schedule(): void {
    if (this.timer !== undefined) return;
    const wait = Math.max(1, Math.ceil(((1 - this.tokens) * 1000) / this.perSecond));
    this.timer = setTimeout(() => {
      this.timer = undefined;
      while (this.waiting.length > 0) {
        const { answer, gone } = this.waiting[0];
        const skip = gone();
        if (!skip && !this.take()) break;
        this.waiting.shift();
        if (!skip) this.send(answer);
      }
      if (this.waiting.length > 0) this.schedule();
    }, wait);
  }

  /** One answer: what it throws is reported, and neither stops the others nor escapes into the timer. */
  private send(answer: () => void): void {
    try {
      answer();
    } catch (err) {
      this.onError(err);
    }
  }
}
