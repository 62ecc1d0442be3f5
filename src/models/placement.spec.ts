import { decidePlacement } from './placement';

const cheap = { perRunUs: 20, perRowUs: 1, rows: 64 };

describe('decidePlacement', () => {
  it('puts a model inline when a one-row run costs less than the cap, in batches the cap allows', () => {
    const d = decidePlacement({ cost: cheap, maxRunUs: 100, inlineAvailable: true });
    expect(d).toMatchObject({ placement: 'inline', setting: 'auto', inlineMaxRows: 80, cost: cheap });
  });

  it('bounds inline batches by the largest timed run when a row costs too little to measure', () => {
    const d = decidePlacement({ cost: { perRunUs: 30, perRowUs: 0, rows: 64 }, maxRunUs: 100, inlineAvailable: true });
    expect(d).toMatchObject({ placement: 'inline', inlineMaxRows: 64 });
  });

  it('keeps a model on the workers when one row costs more than the cap, or the cost is unknown', () => {
    expect(
      decidePlacement({ cost: { perRunUs: 90, perRowUs: 20, rows: 64 }, maxRunUs: 100, inlineAvailable: true }),
    ).toMatchObject({ placement: 'worker', reason: expect.stringContaining('INLINE_MAX_RUN_US') });
    expect(decidePlacement({ maxRunUs: 100, inlineAvailable: true })).toMatchObject({
      placement: 'worker',
      reason: expect.stringContaining('could not be measured'),
    });
    // INLINE_MAX_RUN_US=0 turns inline placement off.
    expect(decidePlacement({ cost: cheap, maxRunUs: 0, inlineAvailable: true }).placement).toBe('worker');
  });

  it("follows config.json's placement whatever the cost, as far as the runtime can", () => {
    const slow = { perRunUs: 5000, perRowUs: 100, rows: 64 };
    expect(decidePlacement({ setting: 'inline', cost: slow, maxRunUs: 100, inlineAvailable: true })).toMatchObject({
      placement: 'inline',
      setting: 'inline',
      inlineMaxRows: Infinity,
    });
    expect(decidePlacement({ setting: 'inline', maxRunUs: 100, inlineAvailable: true }).placement).toBe('inline');
    expect(decidePlacement({ setting: 'worker', cost: cheap, maxRunUs: 100, inlineAvailable: true })).toMatchObject({
      placement: 'worker',
      setting: 'worker',
    });
    expect(decidePlacement({ setting: 'inline', cost: cheap, maxRunUs: 100, inlineAvailable: false })).toMatchObject({
      placement: 'worker',
      reason: expect.stringContaining('no inline sessions'),
    });
  });

  it('always allows one row inline when it fits, even if the run cost leaves no room for more', () => {
    const d = decidePlacement({ cost: { perRunUs: 99, perRowUs: 1, rows: 64 }, maxRunUs: 100, inlineAvailable: true });
    expect(d).toMatchObject({ placement: 'inline', inlineMaxRows: 1 });
  });
});
