import { ROOT_CONTEXT, SpanStatusCode, trace } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import {
  ClientClosedError,
  DeadlineExceededError,
  ModelNotReadyError,
  QueueFullError,
} from '../../common/domain.errors';
import { Compute, doubling, FakeSession } from '../../testing/fake-runtime';
import { TensorData } from '../model.types';
import { RunLostError } from '../runtime/model-runtime.interface';
import { Batcher, BatchingOptions, RunReport } from './batcher';
import { WorkerScheduler } from './worker.scheduler';

const OPTIONS: BatchingOptions = {
  enabled: true,
  maxBatchSize: 8,
  maxQueueDelayMs: 0,
  maxQueueSize: 16,
  concurrency: 1,
};
const rows = (...values: number[][]): TensorData => ({
  type: 'float32',
  dims: [values.length, values[0].length],
  data: Float32Array.from(values.flat()),
});
const valuesOf = (t: TensorData) => Array.from(t.data as Float32Array);
/** One turn of the event loop, in which an inline lane takes its run. */
const turn = () => new Promise((r) => setImmediate(r));

describe('Batcher', () => {
  it('coalesces requests that queue while a run is busy, and gives each caller its own rows', async () => {
    const session = new FakeSession({ gated: true });
    const reports: RunReport[] = [];
    const batcher = new Batcher(session, OPTIONS, 'm', (r) => reports.push(r));
    const first = batcher.submit({ x: rows([1, 1]) }, 1);
    const a = batcher.submit({ x: rows([2, 2], [3, 3]) }, 2);
    const b = batcher.submit({ x: rows([4, 4]) }, 1);
    expect(session.held).toHaveLength(1);
    // Waiting: two requests (Triton's pending count), carrying three rows (the queue bound's unit).
    expect(batcher.depth).toBe(3);
    expect(batcher.pendingRequests).toBe(2);
    await session.finishAll();
    expect(valuesOf((await first).y)).toEqual([2, 2]);
    // The two queued requests went out together, as one run of 3 rows.
    expect(session.held).toHaveLength(1);
    expect(session.held[0].feeds.x.dims).toEqual([3, 2]);
    await session.finishAll();
    expect((await a).y).toEqual({ type: 'float32', dims: [2, 2], data: Float32Array.from([4, 4, 6, 6]) });
    expect(valuesOf((await b).y)).toEqual([8, 8]);
    expect(reports.map((r) => [r.requests, r.rows])).toEqual([
      [1, 1],
      [2, 3],
    ]);
    expect([session.runCount, session.rowCount]).toEqual([2, 4]);
    expect(batcher.stats).toEqual({ runs: 2, rows: 4, inFlight: 0 });
  });

  it('never puts more than maxBatchSize rows in one run, nor mixes shapes', async () => {
    const session = new FakeSession({ gated: true });
    const batcher = new Batcher(session, { ...OPTIONS, maxBatchSize: 3 }, 'm');
    const pending = [batcher.submit({ x: rows([0, 0]) }, 1)];
    for (let i = 1; i <= 4; i++) pending.push(batcher.submit({ x: rows([i, i]) }, 1));
    pending.push(batcher.submit({ x: rows([9, 9, 9]) }, 1));
    await session.finishAll();
    expect(session.held.map((r) => r.feeds.x.dims)).toEqual([[3, 2]]);
    await session.finishAll();
    expect(session.held.map((r) => r.feeds.x.dims)).toEqual([[1, 2]]);
    await session.finishAll();
    expect(session.held.map((r) => r.feeds.x.dims)).toEqual([[1, 3]]);
    await session.finishAll();
    expect((await Promise.all(pending)).map((o) => valuesOf(o.y))).toEqual([
      [0, 0],
      [2, 2],
      [4, 4],
      [6, 6],
      [8, 8],
      [18, 18, 18],
    ]);
  });

  describe('when a run of several requests fails', () => {
    /** Doubles like the default fake, and names the first negative value it meets in its error. */
    const naming: Compute = (feeds) => {
      const bad = Array.from(feeds.x.data as Float32Array).find((v) => v < 0);
      if (bad !== undefined) throw new Error(`bad value ${bad}`);
      return doubling()(feeds);
    };
    /** Observed from the start: a request may fail while the test still drives the runs of the others. */
    const settled = (p: Promise<Record<string, TensorData>>) =>
      p.then(
        (o) => valuesOf(o.y),
        (e: Error) => e.message,
      );

    it('runs each request again alone and answers each with its own outcome', async () => {
      const session = new FakeSession({ gated: true, compute: naming });
      const reports: RunReport[] = [];
      const splits: number[] = [];
      const batcher = new Batcher(
        session,
        OPTIONS,
        'm',
        (r) => reports.push(r),
        (n) => splits.push(n),
      );
      const busy = batcher.submit({ x: rows([1, 1]) }, 1);
      const good = batcher.submit({ x: rows([2, 2], [3, 3]) }, 2);
      const bad = settled(batcher.submit({ x: rows([-1, 4]) }, 1));
      const worse = settled(batcher.submit({ x: rows([-2, 5]) }, 1));
      const alsoGood = batcher.submit({ x: rows([6, 6]) }, 1);
      await session.finishAll();
      await expect(busy).resolves.toBeDefined();
      expect(session.held.map((r) => r.feeds.x.dims)).toEqual([[5, 2]]);
      await session.finishAll();
      expect(splits).toEqual([4]);
      // One at a time, in the slot the failed run held, in queue order.
      for (const dims of [
        [2, 2],
        [1, 2],
        [1, 2],
        [1, 2],
      ]) {
        expect(session.held.map((r) => r.feeds.x.dims)).toEqual([dims]);
        await session.finishAll();
      }
      expect((await good).y).toEqual({ type: 'float32', dims: [2, 2], data: Float32Array.from([4, 4, 6, 6]) });
      expect(await bad).toBe('bad value -1');
      expect(await worse).toBe('bad value -2');
      expect(valuesOf((await alsoGood).y)).toEqual([12, 12]);
      // The failed run is not a run served; each alone-run that answered is, with its request's wait counted once.
      expect(reports.map((r) => [r.requests, r.rows, r.queueWaitMs.length])).toEqual([
        [1, 1, 1],
        [1, 2, 1],
        [1, 1, 1],
      ]);
      expect(session.runCount).toBe(6);
      expect(batcher.stats).toEqual({ runs: 6, rows: 11, inFlight: 0 });
    });

    it('keeps its slot while the requests run again: what queued meanwhile waits, then runs', async () => {
      const session = new FakeSession({ gated: true, compute: naming });
      const batcher = new Batcher(session, OPTIONS, 'm');
      const busy = batcher.submit({ x: rows([1, 1]) }, 1);
      const pair = [settled(batcher.submit({ x: rows([2, 2]) }, 1)), settled(batcher.submit({ x: rows([-3, 3]) }, 1))];
      await session.finishAll();
      await busy;
      await session.finishAll();
      const later = batcher.submit({ x: rows([7, 7]) }, 1);
      expect(session.held.map((r) => valuesOf(r.feeds.x))).toEqual([[2, 2]]);
      expect(batcher.depth).toBe(1);
      await session.finishAll();
      expect(session.held.map((r) => valuesOf(r.feeds.x))).toEqual([[-3, 3]]);
      await session.finishAll();
      expect(session.held.map((r) => valuesOf(r.feeds.x))).toEqual([[7, 7]]);
      await session.finishAll();
      expect(await Promise.all(pair)).toEqual([[4, 4], 'bad value -3']);
      expect(valuesOf((await later).y)).toEqual([14, 14]);
    });

    it('runs each again once: when every request fails alone too, each gets its own error', async () => {
      const session = new FakeSession({
        compute: () => {
          throw new Error('the model is broken');
        },
      });
      const splits: number[] = [];
      const batcher = new Batcher(session, { ...OPTIONS, maxQueueDelayMs: 20 }, 'm', undefined, (n) => splits.push(n));
      const all = [1, 2, 3].map((v) => settled(batcher.submit({ x: rows([v, v]) }, 1)));
      expect(await Promise.all(all)).toEqual(['the model is broken', 'the model is broken', 'the model is broken']);
      expect(splits).toEqual([3]);
      expect(session.runCount).toBe(4);
    });

    it('never runs a lone request twice', async () => {
      const session = new FakeSession({ compute: naming });
      const splits: number[] = [];
      const batcher = new Batcher(session, OPTIONS, 'm', undefined, (n) => splits.push(n));
      await expect(batcher.submit({ x: rows([-1, 1]) }, 1)).rejects.toThrow('bad value -1');
      expect(session.runCount).toBe(1);
      expect(splits).toEqual([]);
    });
  });

  it('fails exactly the requests of a run lost with its worker, reruns none, and frees the slot', async () => {
    let lose = true;
    const session = new FakeSession({
      gated: true,
      compute: (feeds) => {
        if (lose && (feeds.x.data as Float32Array)[0] === 2) throw new RunLostError('the inference worker stopped');
        return doubling()(feeds);
      },
    });
    const splits: number[] = [];
    const batcher = new Batcher(session, OPTIONS, 'm', undefined, (n) => splits.push(n));
    const settled = (p: Promise<Record<string, TensorData>>) =>
      p.then(
        (o) => valuesOf(o.y),
        (e: Error) => `${e.name}: ${e.message}`,
      );
    const busy = batcher.submit({ x: rows([1, 1]) }, 1);
    const lost = [settled(batcher.submit({ x: rows([2, 2]) }, 1)), settled(batcher.submit({ x: rows([3, 3]) }, 1))];
    await session.finishAll();
    await busy;
    expect(session.held.map((r) => r.feeds.x.dims)).toEqual([[2, 2]]);
    const later = batcher.submit({ x: rows([2, 2]) }, 1);
    await session.finishAll();
    expect(await Promise.all(lost)).toEqual([
      'RunLostError: the inference worker stopped',
      'RunLostError: the inference worker stopped',
    ]);
    expect(splits).toEqual([]);
    // The slot is free again: what queued behind the lost run runs next, on a worker that serves it.
    lose = false;
    expect(session.held.map((r) => valuesOf(r.feeds.x))).toEqual([[2, 2]]);
    await session.finishAll();
    expect(valuesOf((await later).y)).toEqual([4, 4]);
    expect(session.runCount).toBe(3);
    expect(batcher.stats.inFlight).toBe(0);
  });

  it('runs each request alone when batching is off', async () => {
    const session = new FakeSession({ gated: true });
    const batcher = new Batcher(session, { ...OPTIONS, enabled: false }, 'm');
    const all = [1, 2, 3].map((v) => batcher.submit({ x: rows([v, v]) }, 1));
    for (let i = 0; i < 3; i++) {
      expect(session.held).toHaveLength(1);
      expect(session.held[0].feeds.x.dims).toEqual([1, 2]);
      await session.finishAll();
    }
    expect((await Promise.all(all)).map((o) => valuesOf(o.y))).toEqual([
      [2, 2],
      [4, 4],
      [6, 6],
    ]);
  });

  it('keeps as many runs in flight as it has workers', () => {
    const session = new FakeSession({ gated: true });
    const batcher = new Batcher(session, { ...OPTIONS, enabled: false, concurrency: 2 }, 'm');
    for (let v = 0; v < 3; v++) void batcher.submit({ x: rows([v, v]) }, 1);
    expect(session.held).toHaveLength(2);
    expect(batcher.depth).toBe(1);
  });

  it('refuses work beyond the queue bound with QUEUE_FULL', async () => {
    const session = new FakeSession({ gated: true });
    const batcher = new Batcher(session, { ...OPTIONS, maxQueueSize: 2 }, 'm');
    const running = batcher.submit({ x: rows([1, 1]) }, 1);
    const queued = [batcher.submit({ x: rows([2, 2]) }, 1), batcher.submit({ x: rows([3, 3]) }, 1)];
    await expect(batcher.submit({ x: rows([4, 4]) }, 1)).rejects.toBeInstanceOf(QueueFullError);
    expect(batcher.depth).toBe(2);
    await session.finishAll();
    await session.finishAll();
    await Promise.all([running, ...queued]);
  });

  it('drops a request whose deadline passes while it waits, and never runs it', async () => {
    const session = new FakeSession({ gated: true });
    const batcher = new Batcher(session, OPTIONS, 'm');
    const running = batcher.submit({ x: rows([1, 1]) }, 1);
    const late = batcher.submit({ x: rows([2, 2]) }, 1, { deadline: Date.now() + 20 });
    await expect(late).rejects.toBeInstanceOf(DeadlineExceededError);
    expect(batcher.depth).toBe(0);
    await session.finishAll();
    await running;
    expect(session.held).toHaveLength(0);
    expect(session.runCount).toBe(1);
  });

  it('drops a queued request when its client goes away', async () => {
    const session = new FakeSession({ gated: true });
    const batcher = new Batcher(session, OPTIONS, 'm');
    const running = batcher.submit({ x: rows([1, 1]) }, 1);
    const client = new AbortController();
    const gone = batcher.submit({ x: rows([2, 2]) }, 1, { signal: client.signal });
    client.abort();
    await expect(gone).rejects.toBeInstanceOf(ClientClosedError);
    expect(batcher.depth).toBe(0);
    await session.finishAll();
    await running;
    expect(session.held).toHaveLength(0);
    expect(session.runCount).toBe(1);
  });

  it('waits up to maxQueueDelayMs for company when a worker is free', async () => {
    const session = new FakeSession({ gated: true });
    const batcher = new Batcher(session, { ...OPTIONS, maxQueueDelayMs: 30 }, 'm');
    const a = batcher.submit({ x: rows([1, 1]) }, 1);
    const b = batcher.submit({ x: rows([2, 2]) }, 1);
    expect(session.held).toHaveLength(0);
    await new Promise((r) => setTimeout(r, 60));
    expect(session.held.map((r) => r.feeds.x.dims)).toEqual([[2, 2]]);
    await session.finishAll();
    await Promise.all([a, b]);
  });

  describe('holding a partial batch for as many rows as the last run carried (holdMs)', () => {
    /** A batcher whose last run carried three rows, with the worker free again. */
    async function afterARunOfThree(holdMs: number) {
      const session = new FakeSession({ gated: true });
      const batcher = new Batcher(session, { ...OPTIONS, holdMs }, 'm');
      const first = batcher.submit({ x: rows([0, 0]) }, 1);
      const three = [1, 2, 3].map((i) => batcher.submit({ x: rows([i, i]) }, 1));
      await session.finishAll();
      await session.finishAll();
      await Promise.all([first, ...three]);
      expect(session.runCount).toBe(2);
      return { session, batcher };
    }

    it('starts the run as soon as the rows are there', async () => {
      const { session, batcher } = await afterARunOfThree(10_000);
      const a = batcher.submit({ x: rows([4, 4]) }, 1);
      const b = batcher.submit({ x: rows([5, 5]) }, 1);
      expect(session.held).toHaveLength(0);
      const c = batcher.submit({ x: rows([6, 6]) }, 1);
      expect(session.held.map((r) => r.feeds.x.dims)).toEqual([[3, 2]]);
      await session.finishAll();
      expect((await Promise.all([a, b, c])).map((o) => valuesOf(o.y))).toEqual([
        [8, 8],
        [10, 10],
        [12, 12],
      ]);
    });

    it('runs what it has once holdMs has passed since the oldest request arrived', async () => {
      const { session, batcher } = await afterARunOfThree(1000);
      const a = batcher.submit({ x: rows([4, 4]) }, 1);
      await new Promise((r) => setTimeout(r, 50));
      expect(session.held).toHaveLength(0);
      await new Promise((r) => setTimeout(r, 1100));
      expect(session.held.map((r) => r.feeds.x.dims)).toEqual([[1, 2]]);
      await session.finishAll();
      expect(valuesOf((await a).y)).toEqual([8, 8]);
      // That run carried one row: the next request alone does not wait.
      const b = batcher.submit({ x: rows([5, 5]) }, 1);
      expect(session.held).toHaveLength(1);
      await session.finishAll();
      await b;
    });

    it('never holds a request that arrives when no run has carried more than one row', async () => {
      const session = new FakeSession({ gated: true });
      const batcher = new Batcher(session, { ...OPTIONS, holdMs: 10_000 }, 'm');
      const a = batcher.submit({ x: rows([1, 1]) }, 1);
      expect(session.held).toHaveLength(1);
      await session.finishAll();
      await a;
    });
  });

  it('fails what is queued when closed, refuses new work, and says when the last run is done', async () => {
    const session = new FakeSession({ gated: true });
    const batcher = new Batcher(session, OPTIONS, 'm');
    const running = batcher.submit({ x: rows([1, 1]) }, 1);
    const queued = batcher.submit({ x: rows([2, 2]) }, 1);
    batcher.close('is shutting down');
    await expect(queued).rejects.toBeInstanceOf(ModelNotReadyError);
    await expect(batcher.submit({ x: rows([3, 3]) }, 1)).rejects.toThrow('m is shutting down');
    let idle = false;
    const waiting = batcher.idle().then(() => (idle = true));
    await new Promise((r) => setImmediate(r));
    expect(idle).toBe(false);
    await session.finishAll();
    await expect(running).resolves.toBeDefined();
    await waiting;
    expect(idle).toBe(true);
  });
});

describe('Batcher with a shared WorkerScheduler and an inline lane', () => {
  /** A version with one worker and an inline lane of at most `maxRows` rows a run, both gated. */
  function withInlineLane(maxRows: number) {
    const scheduler = new WorkerScheduler(1);
    const workerSession = new FakeSession({ gated: true });
    const inlineSession = new FakeSession({ gated: true });
    const reports: RunReport[] = [];
    const batcher = new Batcher(workerSession, OPTIONS, 'm', (r) => reports.push(r), undefined, {
      scheduler,
      inline: { session: inlineSession, maxRows },
    });
    return { scheduler, workerSession, inlineSession, reports, batcher };
  }

  it('never hands a worker more than one run: other versions wait in their own queues', async () => {
    const scheduler = new WorkerScheduler(1);
    const slowSession = new FakeSession({ gated: true });
    const fastSession = new FakeSession({ gated: true });
    const slow = new Batcher(slowSession, OPTIONS, 'slow', undefined, undefined, { scheduler });
    const fast = new Batcher(fastSession, OPTIONS, 'fast', undefined, undefined, { scheduler });
    const running = slow.submit({ x: rows([1, 1]) }, 1);
    const waiting = fast.submit({ x: rows([2, 2]) }, 1);
    expect([slowSession.held.length, fastSession.held.length]).toEqual([1, 0]);
    expect(fast.depth).toBe(1);
    await slowSession.finishAll();
    await running;
    expect(fastSession.held).toHaveLength(1);
    await fastSession.finishAll();
    expect(valuesOf((await waiting).y)).toEqual([4, 4]);
  });

  it('answers DEADLINE_EXCEEDED to a request whose deadline passes while another version holds every worker', async () => {
    const scheduler = new WorkerScheduler(1);
    const slowSession = new FakeSession({ gated: true });
    const fastSession = new FakeSession();
    const slow = new Batcher(slowSession, OPTIONS, 'slow', undefined, undefined, { scheduler });
    const fast = new Batcher(fastSession, OPTIONS, 'fast', undefined, undefined, { scheduler });
    const running = slow.submit({ x: rows([1, 1]) }, 1);
    const late = fast.submit({ x: rows([2, 2]) }, 1, { deadline: Date.now() + 20 });
    await expect(late).rejects.toBeInstanceOf(DeadlineExceededError);
    expect(slowSession.held).toHaveLength(1);
    await slowSession.finishAll();
    await running;
    // The dropped request never ran, and its grant went unused rather than lost.
    expect(fastSession.runCount).toBe(0);
    await expect(fast.submit({ x: rows([3, 3]) }, 1)).resolves.toBeDefined();
    expect(scheduler.running).toBe(0);
  });

  it('holds at most `concurrency` workers per version (instances), leaving the rest to others', async () => {
    const scheduler = new WorkerScheduler(2);
    const slowSession = new FakeSession({ gated: true });
    const otherSession = new FakeSession({ gated: true });
    const slow = new Batcher(
      slowSession,
      { ...OPTIONS, enabled: false, concurrency: 1 },
      'slow',
      undefined,
      undefined,
      {
        scheduler,
      },
    );
    const other = new Batcher(otherSession, OPTIONS, 'other', undefined, undefined, { scheduler });
    const slowRuns = [slow.submit({ x: rows([1, 1]) }, 1), slow.submit({ x: rows([2, 2]) }, 1)];
    expect(slowSession.held).toHaveLength(1);
    const answer = other.submit({ x: rows([5, 5]) }, 1);
    expect(otherSession.held).toHaveLength(1);
    await otherSession.finishAll();
    expect(valuesOf((await answer).y)).toEqual([10, 10]);
    await slowSession.finishAll();
    await slowSession.finishAll();
    await Promise.all(slowRuns);
    expect(slowSession.runCount).toBe(2);
  });

  it('runs small batches inline with no worker, coalescing what arrives in the same turn and while it runs', async () => {
    const { scheduler, workerSession, inlineSession, reports, batcher } = withInlineLane(3);
    const first = [batcher.submit({ x: rows([1, 1]) }, 1), batcher.submit({ x: rows([2, 2]) }, 1)];
    // Too many rows for the inline lane: it goes to a worker, at once, beside the inline run.
    const large = batcher.submit({ x: rows([5, 5], [6, 6], [7, 7], [8, 8]) }, 4);
    expect(workerSession.held.map((r) => r.feeds.x.dims)).toEqual([[4, 2]]);
    await turn();
    expect(inlineSession.held.map((r) => r.feeds.x.dims)).toEqual([[2, 2]]);
    const later = [batcher.submit({ x: rows([3, 3], [4, 4]) }, 2), batcher.submit({ x: rows([9, 9]) }, 1)];
    expect(scheduler.running).toBe(1);
    await inlineSession.finishAll();
    expect((await Promise.all(first)).map((o) => valuesOf(o.y))).toEqual([
      [2, 2],
      [4, 4],
    ]);
    await turn();
    // What queued while the first inline run was busy goes out together, within the lane's 3 rows.
    expect(inlineSession.held.map((r) => r.feeds.x.dims)).toEqual([[3, 2]]);
    await inlineSession.finishAll();
    await workerSession.finishAll();
    expect(valuesOf((await later[0]).y)).toEqual([6, 6, 8, 8]);
    expect(valuesOf((await later[1]).y)).toEqual([18, 18]);
    expect(valuesOf((await large).y)).toEqual([10, 10, 12, 12, 14, 14, 16, 16]);
    expect(reports.map((r) => [r.placement, r.rows])).toEqual([
      ['inline', 2],
      ['inline', 3],
      ['worker', 4],
    ]);
    expect(scheduler.running).toBe(0);
    await expect(batcher.idle()).resolves.toBeUndefined();
  });

  /** A version with an inline lane of any size, and an inline run in progress. */
  async function behindAnInlineRun() {
    const inlineSession = new FakeSession({ gated: true });
    const batcher = new Batcher(new FakeSession(), OPTIONS, 'm', undefined, undefined, {
      scheduler: new WorkerScheduler(1),
      inline: { session: inlineSession, maxRows: Infinity },
    });
    const running = batcher.submit({ x: rows([1, 1]) }, 1);
    await turn();
    return { inlineSession, batcher, running };
  }

  it('answers DEADLINE_EXCEEDED to an inline request still waiting at its deadline, and never runs it', async () => {
    const { inlineSession, batcher, running } = await behindAnInlineRun();
    // Queued behind the inline run in progress, with a deadline that passes before that run ends.
    const late = batcher.submit({ x: rows([2, 2]) }, 1, { deadline: Date.now() + 5 });
    const onTime = batcher.submit({ x: rows([3, 3]) }, 1, { deadline: Date.now() + 60000 });
    await new Promise((r) => setTimeout(r, 20));
    await inlineSession.finishAll();
    await running;
    await expect(late).rejects.toBeInstanceOf(DeadlineExceededError);
    await turn();
    await inlineSession.finishAll();
    expect(valuesOf((await onTime).y)).toEqual([6, 6]);
    expect(inlineSession.runCount).toBe(2);
  });

  it('answers CLIENT_CLOSED to an inline request whose client went away while it waited, and never runs it', async () => {
    const { inlineSession, batcher, running } = await behindAnInlineRun();
    // Queued behind the inline run in progress; its client leaves before that run ends.
    const client = new AbortController();
    const gone = batcher.submit({ x: rows([2, 2]) }, 1, { signal: client.signal });
    const staying = batcher.submit({ x: rows([3, 3]) }, 1, { signal: new AbortController().signal });
    client.abort();
    await inlineSession.finishAll();
    await running;
    await expect(gone).rejects.toBeInstanceOf(ClientClosedError);
    await turn();
    await inlineSession.finishAll();
    expect(valuesOf((await staying).y)).toEqual([6, 6]);
    expect(inlineSession.runCount).toBe(2);
  });

  it('hands a free worker the inline requests that are more than the next inline run takes', async () => {
    const { workerSession, inlineSession, reports, batcher } = withInlineLane(2);
    const submit = (v: number) => batcher.submit({ x: rows([v, v]) }, 1);
    const spilled = [submit(1), submit(2)];
    expect(workerSession.held).toHaveLength(0);
    // A third row is more than an inline run takes: a worker takes all three, as one run.
    spilled.push(submit(3));
    expect(workerSession.held.map((r) => r.feeds.x.dims)).toEqual([[3, 2]]);
    await turn();
    expect(inlineSession.held).toHaveLength(0);
    // With the worker busy, the inline lane runs what comes, in runs of at most its two rows.
    const inline = [submit(4), submit(5), submit(6)];
    await turn();
    expect(inlineSession.held.map((r) => r.feeds.x.dims)).toEqual([[2, 2]]);
    await inlineSession.finishAll();
    await turn();
    expect(inlineSession.held.map((r) => r.feeds.x.dims)).toEqual([[1, 2]]);
    await inlineSession.finishAll();
    await workerSession.finishAll();
    expect((await Promise.all([...spilled, ...inline])).map((o) => valuesOf(o.y)[0])).toEqual([2, 4, 6, 8, 10, 12]);
    // Reported as they finish.
    expect(reports.map((r) => [r.placement, r.rows])).toEqual([
      ['inline', 2],
      ['inline', 1],
      ['worker', 3],
    ]);
  });

  it('keeps inline runs going while every worker is busy with another version', async () => {
    const scheduler = new WorkerScheduler(1);
    const slowSession = new FakeSession({ gated: true });
    const slow = new Batcher(slowSession, OPTIONS, 'slow', undefined, undefined, { scheduler });
    const tiny = new Batcher(new FakeSession(), OPTIONS, 'tiny', undefined, undefined, {
      scheduler,
      inline: { session: new FakeSession(), maxRows: Infinity },
    });
    const running = slow.submit({ x: rows([1, 1]) }, 1);
    expect(valuesOf((await tiny.submit({ x: rows([7, 7]) }, 1)).y)).toEqual([14, 14]);
    expect(slowSession.held).toHaveLength(1);
    await slowSession.finishAll();
    await running;
  });
});

describe('Batcher, traced', () => {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  const requestTracer = provider.getTracer('test');
  beforeAll(() => trace.setGlobalTracerProvider(provider));
  afterAll(async () => {
    trace.disable();
    await provider.shutdown();
  });
  beforeEach(() => exporter.reset());

  /** A request's span, as the HTTP or gRPC layer opens it, and its context for the batcher. */
  const request = (name: string) => {
    const span = requestTracer.startSpan(name);
    return { id: span.spanContext().spanId, trace: trace.setSpan(ROOT_CONTEXT, span) };
  };
  const spansUnder = (parentId: string) =>
    exporter.getFinishedSpans().filter((s) => s.parentSpanContext?.spanId === parentId);

  it('gives each traced request its queue wait and its own span of a shared run; untraced requests get none', async () => {
    const session = new FakeSession({ gated: true });
    const attributes = { 'inference.model.name': 'm', 'inference.model.version': 3 };
    const batcher = new Batcher(session, OPTIONS, 'm', undefined, undefined, {}, attributes);
    const [a, b, c] = ['a', 'b', 'c'].map(request);
    const first = batcher.submit({ x: rows([1, 1]) }, 1, { trace: a.trace });
    const shared = [
      batcher.submit({ x: rows([2, 2], [3, 3]) }, 2, { trace: b.trace }),
      batcher.submit({ x: rows([4, 4]) }, 1, { trace: c.trace }),
      batcher.submit({ x: rows([5, 5]) }, 1),
    ];
    await session.finishAll();
    await first;
    await session.finishAll();
    await Promise.all(shared);

    for (const [r, rowCount] of [
      [b, 2],
      [c, 1],
    ] as const) {
      const spans = Object.fromEntries(spansUnder(r.id).map((s) => [s.name, s]));
      expect(Object.keys(spans).sort()).toEqual(['inference run', 'queue wait']);
      expect(spans['queue wait'].attributes).toMatchObject({ ...attributes, 'inference.rows': rowCount });
      // The run they shared, seen from each: the whole run's size beside the request's own rows.
      expect(spans['inference run'].attributes).toEqual({
        ...attributes,
        'inference.rows': rowCount,
        'inference.batch.size': 4,
        'inference.batch.requests': 3,
      });
      expect(spans['inference run'].status.code).toBe(SpanStatusCode.UNSET);
    }
    expect(spansUnder(a.id).find((s) => s.name === 'inference run')?.attributes['inference.batch.requests']).toBe(1);
    // Two spans for each traced request; the untraced one made none.
    expect(exporter.getFinishedSpans()).toHaveLength(6);
  });

  it('shows a failed shared run, then each request’s own rerun, in each traced request’s trace', async () => {
    const session = new FakeSession({ gated: true });
    const batcher = new Batcher(session, OPTIONS, 'm');
    const [busy, good, bad] = ['busy', 'good', 'bad'].map(request);
    const running = batcher.submit({ x: rows([1, 1]) }, 1, { trace: busy.trace });
    const fine = batcher.submit({ x: rows([2, 2]) }, 1, { trace: good.trace });
    const failing = batcher.submit({ x: rows([-1, -1]) }, 1, { trace: bad.trace }).catch((err: Error) => err);
    await session.finishAll();
    await running;
    // The shared run of good and bad fails; each then runs alone, one after the other.
    for (let i = 0; i < 3; i++) await session.finishAll();
    expect(valuesOf((await fine).y)).toEqual([4, 4]);
    expect(await failing).toEqual(new Error('negative input'));

    const runsOf = (id: string) =>
      spansUnder(id)
        .filter((s) => s.name === 'inference run')
        .map((s) => ({
          requests: s.attributes['inference.batch.requests'],
          split: s.attributes['inference.batch.split'] ?? false,
          status: s.status.code,
        }));
    expect(runsOf(good.id)).toEqual([
      { requests: 2, split: false, status: SpanStatusCode.ERROR },
      { requests: 1, split: true, status: SpanStatusCode.UNSET },
    ]);
    expect(runsOf(bad.id)).toEqual([
      { requests: 2, split: false, status: SpanStatusCode.ERROR },
      { requests: 1, split: true, status: SpanStatusCode.ERROR },
    ]);
  });

  it('ends a dropped request’s queue wait and a failed run’s span as errors, with their codes', async () => {
    const session = new FakeSession({ gated: true });
    const batcher = new Batcher(session, OPTIONS, 'm');
    const [busy, late, bad] = ['busy', 'late', 'bad'].map(request);
    const running = batcher.submit({ x: rows([1, 1]) }, 1, { trace: busy.trace });
    const dropped = batcher.submit({ x: rows([2, 2]) }, 1, { trace: late.trace, deadline: Date.now() - 1 });
    await expect(dropped).rejects.toBeInstanceOf(DeadlineExceededError);
    const failing = batcher.submit({ x: rows([-1, -1]) }, 1, { trace: bad.trace }).catch((err: Error) => err);
    await session.finishAll();
    await running;
    await session.finishAll();
    expect(await failing).toEqual(new Error('negative input'));

    const wait = spansUnder(late.id);
    expect(wait.map((s) => s.name)).toEqual(['queue wait']);
    expect(wait[0].status.code).toBe(SpanStatusCode.ERROR);
    expect(wait[0].attributes['error.type']).toBe('DEADLINE_EXCEEDED');
    const run = spansUnder(bad.id).find((s) => s.name === 'inference run')!;
    expect(run.status).toMatchObject({ code: SpanStatusCode.ERROR, message: expect.stringMatching(/negative input/) });
  });
});
