import { MetricsService } from '../observability/metrics.service';

/**
 * The value of a counter (or gauge) of the service's registry for the labels given, 0 when never
 * set: what a scrape would show, read without parsing the text format.
 */
export async function metricValue(
  metrics: MetricsService,
  name: string,
  labels: Readonly<Record<string, string>> = {},
): Promise<number> {
  const metric = metrics.registry.getSingleMetric(name);
  if (!metric) throw new Error(`no metric named ${name}`);
  const { values } = await metric.get();
  return values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l))?.value ?? 0;
}
