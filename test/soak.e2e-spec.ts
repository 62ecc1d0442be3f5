import { runSoak } from '../bench/soak';
import { HTTP_ADAPTER } from './support/app';

/**
 * The soak of `npm run soak`, shortened to a few seconds: the real service as its own process,
 * under a mix of good, repeated and deliberately bad requests. Every answer must be the one the
 * request was sent to get, and the service must still be up. RSS over a few seconds is mostly
 * warm-up, so only a generous bound is asserted; `npm run soak` reports the real figure.
 */
describe('soak (shortened)', () => {
  it('answers every request as expected, stays up, and keeps its memory within bounds', async () => {
    const lines: string[] = [];
    const report = await runSoak({
      seconds: Number(process.env.SOAK_SECONDS ?? 6),
      concurrency: 4,
      entry: 'src',
      adapter: HTTP_ADAPTER,
      log: (l) => lines.push(l),
    });
    expect(report.unexpectedSamples).toEqual([]);
    expect(report.unexpected).toBe(0);
    expect(report.serviceAlive).toBe(true);
    expect(report.requests).toBeGreaterThan(50);
    // Each group was sent: good, repeated and bad requests, and the bad ones got their 4xx.
    for (const status of ['200', '400', '401', '404', '413', '415']) expect(report.byStatus[status]).toBeGreaterThan(0);
    expect(Object.keys(report.byStatus).filter((s) => Number(s) >= 500 || s === '0')).toEqual([]);
    expect(report.rssEndMb).toBeGreaterThan(0);
    expect(report.rssEndMb).toBeLessThan(report.rssStartMb * 2);
    expect(Number.isFinite(report.eventLoopLagMs.p99)).toBe(true);
  });
});
