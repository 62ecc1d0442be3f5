/** A batcher as the scheduler sees it. */
export interface SchedulerClient {
  /** When the oldest of its requests that wait for a worker arrived (performance.now()), or undefined if none does. */
  readonly waitingSince: number | undefined;
  /**
   * A worker is the client's: it starts one run on it and calls `release` when the run ends, or at
   * once if it has nothing to run any more.
   */
  grant(release: () => void): void;
}

/**
 * Hands the inference workers to the batchers of every model version, one run per worker at a
 * time, so that no run ever waits in a worker's message queue: whatever cannot run yet waits in its
 * batcher's queue, where deadlines and disconnects still drop it. When a worker frees up, the batcher
 * whose oldest waiting request is the oldest gets it, so a busy model cannot starve another; how
 * many workers one version may hold at once is the batcher's own limit (config.json `instances`).
 */
export class WorkerScheduler {
  private busy = 0;
  private readonly waiting = new Set<SchedulerClient>();
  private pumping = false;

  constructor(readonly workers: number) {}

  /** Workers running a run now. */
  get running(): number {
    return this.busy;
  }

  /** Batchers waiting for a worker now. */
  get queued(): number {
    return this.waiting.size;
  }

  /** The client has a run to start: it is granted a worker now if one is free, else in its turn. */
  request(client: SchedulerClient): void {
    this.waiting.add(client);
    this.pump();
  }

  /** The client no longer waits (closed). */
  withdraw(client: SchedulerClient): void {
    this.waiting.delete(client);
  }

  private pump(): void {
    // A grant may request again or release at once; the loop below picks that up without recursion.
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.busy < this.workers && this.waiting.size > 0) {
        const next = this.oldest();
        if (!next) break;
        this.waiting.delete(next);
        this.busy++;
        let released = false;
        next.grant(() => {
          if (released) return;
          released = true;
          this.busy--;
          this.pump();
        });
      }
    } finally {
      this.pumping = false;
    }
  }

  /** The waiting client with the oldest request; clients with nothing left to run leave the list. */
  private oldest(): SchedulerClient | undefined {
    let best: SchedulerClient | undefined;
    let since = Infinity;
    for (const client of this.waiting) {
      const at = client.waitingSince;
      if (at === undefined) this.waiting.delete(client);
      else if (at < since) [best, since] = [client, at];
    }
    return best;
  }
}
