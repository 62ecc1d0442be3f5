import type { PlacementSetting } from './model-config';
import type { RunCost } from './runtime/model-runtime.interface';

export type Placement = 'inline' | 'worker';

/** Where a version's runs go, and why: what GET /v1/models/{model} shows. */
export interface PlacementDecision {
  readonly placement: Placement;
  /** config.json `placement`, `auto` when unset. */
  readonly setting: PlacementSetting;
  /** Most rows of one inline run (inline only); larger requests run on a worker. */
  readonly inlineMaxRows?: number;
  readonly cost?: RunCost;
  readonly reason: string;
}

export interface PlacementInput {
  readonly setting?: PlacementSetting;
  /** Undefined when it could not be measured (failed warm-up, a dynamic dimension besides the batch one). */
  readonly cost?: RunCost;
  /** INLINE_MAX_RUN_US. */
  readonly maxRunUs: number;
  /** Whether the runtime can run a session on the event loop at all. */
  readonly inlineAvailable: boolean;
}

/**
 * Inline when a run of one row is cheaper than the cap (a thread hop costs more than such a run),
 * in batches of at most as many rows as the cap allows, so an inline run never holds the event loop
 * for longer than the cap (as far as the warm-up's timings tell); on the workers otherwise. A
 * model whose cost is unknown goes to the workers: only its inputs would say what a run costs.
 */
export function decidePlacement({
  setting = 'auto',
  cost,
  maxRunUs,
  inlineAvailable,
}: PlacementInput): PlacementDecision {
  const base = { setting, cost };
  if (setting === 'worker') return { ...base, placement: 'worker', reason: 'config.json placement is worker' };
  if (!inlineAvailable) return { ...base, placement: 'worker', reason: 'the runtime has no inline sessions' };
  if (setting === 'inline') {
    return { ...base, placement: 'inline', inlineMaxRows: Infinity, reason: 'config.json placement is inline' };
  }
  if (!cost) return { ...base, placement: 'worker', reason: 'the cost of a run could not be measured at warm-up' };
  const one = cost.perRunUs + cost.perRowUs;
  if (one > maxRunUs) {
    return {
      ...base,
      placement: 'worker',
      reason: `a run of one row costs more than INLINE_MAX_RUN_US (${maxRunUs} µs)`,
    };
  }
  // A row too cheap to see in the timings: only batches as large as the one timed are known to fit.
  const rows = cost.perRowUs > 0 ? Math.floor((maxRunUs - cost.perRunUs) / cost.perRowUs) : cost.rows;
  return {
    ...base,
    placement: 'inline',
    inlineMaxRows: Math.max(1, rows),
    reason: `a run costs less than INLINE_MAX_RUN_US (${maxRunUs} µs)`,
  };
}
