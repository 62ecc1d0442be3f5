import { ERROR_CODES } from '../common/domain.errors';
import { metricValue } from '../testing/metrics';
import { failureReason, MetricsService } from './metrics.service';

describe('MetricsService', () => {
  it("labels each failure with Triton's reason beside the error code", async () => {
    const metrics = new MetricsService();
    for (const code of ['QUEUE_FULL', 'DEADLINE_EXCEEDED', 'CLIENT_CLOSED', 'INFERENCE_FAILED', 'INVALID_INPUT'])
      metrics.observeInference('iris', 1, 0.001, code);
    const failures = async (reason: string) => {
      const { values } = await metrics.registry.getSingleMetric('inference_request_failure_total')!.get();
      return values.filter((v) => v.labels.reason === reason).reduce((sum, v) => sum + v.value, 0);
    };
    expect(await failures('REJECTED')).toBe(2);
    expect(await failures('CANCELED')).toBe(1);
    expect(await failures('BACKEND')).toBe(1);
    expect(await failures('OTHER')).toBe(1);
  });

  it('gives every error code one of the four reasons', () => {
    const reasons = new Set(Object.keys(ERROR_CODES).map(failureReason));
    expect([...reasons].sort()).toEqual(['BACKEND', 'CANCELED', 'OTHER', 'REJECTED']);
  });

  it('reports pending requests and the rows they carry, read when scraped', async () => {
    const metrics = new MetricsService();
    let queue = { model: 'iris', version: 2, depth: 5, requests: 2 };
    metrics.setQueueDepthSource(() => [queue]);
    const labels = { model: 'iris', version: '2' };
    expect(await metricValue(metrics, 'inference_pending_requests', labels)).toBe(2);
    expect(await metricValue(metrics, 'inference_queue_depth', labels)).toBe(5);
    queue = { ...queue, depth: 0, requests: 0 };
    expect(await metricValue(metrics, 'inference_pending_requests', labels)).toBe(0);
  });
});
