import { MAX_WAITING_REFUSALS, RefusalPacer } from './refusal-pacer';

describe('RefusalPacer', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  /** Paces `n` answers at once and returns the order they went out in, as it grows. */
  const flood = (pacer: RefusalPacer, n: number, from = 0): number[] => {
    const sent: number[] = [];
    for (let i = from; i < from + n; i++) pacer.pace(() => sent.push(i));
    return sent;
  };

  it('answers a burst of perSecond at once, then one every 1/perSecond s, in arrival order', () => {
    let delayed = 0;
    const pacer = new RefusalPacer(10, () => delayed++);
    const sent = flood(pacer, 15);
    expect(sent).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(delayed).toBe(5);
    expect(pacer.backlog).toBe(5);
    jest.advanceTimersByTime(99);
    expect(sent).toHaveLength(10);
    jest.advanceTimersByTime(1);
    expect(sent).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    jest.advanceTimersByTime(400);
    expect(sent).toEqual(Array.from({ length: 15 }, (_, i) => i));
    expect(pacer.backlog).toBe(0);
  });

  it('lets a later refusal wait behind the earlier ones rather than take a token refilled meanwhile', () => {
    const pacer = new RefusalPacer(10);
    const sent = flood(pacer, 12);
    jest.advanceTimersByTime(50);
    pacer.pace(() => sent.push(99));
    jest.advanceTimersByTime(50);
    expect(sent.slice(10)).toEqual([10]);
    jest.advanceTimersByTime(200);
    expect(sent.slice(10)).toEqual([10, 11, 99]);
  });

  it('refills its burst while no refusal comes', () => {
    const pacer = new RefusalPacer(10);
    flood(pacer, 10);
    jest.advanceTimersByTime(1000);
    expect(flood(pacer, 10)).toHaveLength(10);
  });

  it('answers at once past MAX_WAITING_REFUSALS, and when off', () => {
    const pacer = new RefusalPacer(1);
    flood(pacer, 1 + MAX_WAITING_REFUSALS);
    expect(pacer.backlog).toBe(MAX_WAITING_REFUSALS);
    expect(flood(pacer, 3)).toHaveLength(3);
    expect(flood(new RefusalPacer(0), 1000)).toHaveLength(1000);
  });

  it('skips a client gone while it waited, without spending a turn on it', () => {
    const pacer = new RefusalPacer(1);
    const sent = flood(pacer, 1);
    let gone = false;
    pacer.pace(
      () => sent.push(1),
      () => gone,
    );
    pacer.pace(() => sent.push(2));
    gone = true;
    jest.advanceTimersByTime(1000);
    expect(sent).toEqual([0, 2]);
    expect(pacer.backlog).toBe(0);
  });

  it('reports what an answer sent in its turn throws, and answers the others', () => {
    const errors: unknown[] = [];
    const pacer = new RefusalPacer(1, undefined, (err) => errors.push(err));
    const sent = flood(pacer, 1);
    pacer.pace(() => {
      throw new Error('socket gone');
    });
    pacer.pace(() => sent.push(2));
    jest.advanceTimersByTime(1000);
    expect(errors).toEqual([new Error('socket gone')]);
    jest.advanceTimersByTime(1000);
    expect(sent).toEqual([0, 2]);
  });
});
