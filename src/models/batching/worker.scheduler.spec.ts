import { SchedulerClient, WorkerScheduler } from './worker.scheduler';

/** A client holding requests that arrived at the given times; each grant starts one, recorded. */
class Client implements SchedulerClient {
  readonly releases: (() => void)[] = [];
  constructor(
    readonly name: string,
    private readonly arrivals: number[],
    private readonly log: string[],
  ) {}

  get waitingSince(): number | undefined {
    return this.arrivals[0];
  }

  grant(release: () => void): void {
    const at = this.arrivals.shift();
    if (at === undefined) return release();
    this.log.push(`${this.name}@${at}`);
    this.releases.push(release);
  }
}

describe('WorkerScheduler', () => {
  it('grants at most one run per worker, and the next one when a run ends', () => {
    const log: string[] = [];
    const scheduler = new WorkerScheduler(2);
    const a = new Client('a', [1, 2, 3, 4], log);
    for (let i = 0; i < 4; i++) scheduler.request(a);
    expect(log).toEqual(['a@1', 'a@2']);
    // Asking while it already waits counts once: it is granted one run per free worker, no more.
    expect([scheduler.running, scheduler.queued]).toEqual([2, 1]);
    a.releases.shift()!();
    expect(log).toEqual(['a@1', 'a@2', 'a@3']);
    expect([scheduler.running, scheduler.queued]).toEqual([2, 0]);
    a.releases.shift()!();
    expect(log).toEqual(['a@1', 'a@2', 'a@3']);
    scheduler.request(a);
    expect(log).toEqual(['a@1', 'a@2', 'a@3', 'a@4']);
    expect(scheduler.running).toBe(2);
  });

  it('gives a free worker to the client whose waiting request is oldest, so no busy client starves another', () => {
    const log: string[] = [];
    const scheduler = new WorkerScheduler(1);
    const busy = new Client('busy', [1, 2, 5, 6, 7], log);
    const other = new Client('other', [3, 8], log);
    scheduler.request(busy);
    scheduler.request(busy);
    scheduler.request(other);
    expect(log).toEqual(['busy@1']);
    for (let i = 0; i < 4; i++) {
      const last = log.at(-1)!.startsWith('busy') ? busy : other;
      last.releases.shift()!();
      if (busy.waitingSince !== undefined) scheduler.request(busy);
      if (other.waitingSince !== undefined) scheduler.request(other);
    }
    expect(log).toEqual(['busy@1', 'busy@2', 'other@3', 'busy@5', 'busy@6']);
  });

  it('skips clients with nothing left to run, and a client released at once frees its worker', () => {
    const log: string[] = [];
    const scheduler = new WorkerScheduler(1);
    const empty = new Client('empty', [], log);
    const gone = new Client('gone', [1], log);
    const live = new Client('live', [2], log);
    const holder = new Client('holder', [0], log);
    scheduler.request(holder);
    scheduler.request(empty);
    scheduler.request(gone);
    scheduler.request(live);
    expect(scheduler.queued).toBe(3);
    scheduler.withdraw(gone);
    holder.releases.shift()!();
    expect(log).toEqual(['holder@0', 'live@2']);
    expect(scheduler.queued).toBe(0);
  });

  it('counts a release once however often it is called', () => {
    const log: string[] = [];
    const scheduler = new WorkerScheduler(1);
    const a = new Client('a', [1, 2, 3], log);
    scheduler.request(a);
    const release = a.releases.shift()!;
    release();
    release();
    expect(scheduler.running).toBe(0);
    scheduler.request(a);
    scheduler.request(a);
    expect(log).toEqual(['a@1', 'a@2']);
    expect(scheduler.running).toBe(1);
  });
});
