import { Inject, Injectable } from '@nestjs/common';
import { HealthIndicatorResult, HealthIndicatorService } from '@nestjs/terminus';
import { CACHE_STORE, CacheStore } from '../cache/cache-store';
import { withTimeout } from '../common/with-timeout';
import { AppConfig } from '../config/app.config';
import { ModelRegistry } from '../models/model.registry';
import { LifecycleService } from './lifecycle.service';

const PING_TIMEOUT_MS = 1000;

/**
 * The checks behind the probes, as Terminus indicators. Each names what fails and why, so an
 * operator reading a 503 knows which model to look at.
 */
@Injectable()
export class ReadinessIndicators {
  constructor(
    private readonly health: HealthIndicatorService,
    private readonly registry: ModelRegistry,
    private readonly lifecycle: LifecycleService,
    @Inject(CACHE_STORE) private readonly store: CacheStore,
    private readonly config: AppConfig,
  ) {}

  /** Every check readiness needs, in the order a 503 body lists them. */
  readiness(): (() => Promise<HealthIndicatorResult>)[] {
    return [() => Promise.resolve(this.shutdown()), () => Promise.resolve(this.models()), () => this.cache()];
  }

  /** The readiness answer as a boolean, for protocols whose probe has no body to explain it (V2). */
  async ready(): Promise<boolean> {
    const results = await Promise.all(this.readiness().map((check) => check()));
    return results.every((result) => Object.values(result).every((r) => r.status === 'up'));
  }

  /**
   * Up when the repository has models and each one's default version is loaded, warmed and
   * self-tested. A version failing beside a serving default (a bad new version during a reload)
   * does not count: the model still answers. Models unloaded on purpose are not listed at all.
   */
  models(): HealthIndicatorResult {
    const check = this.health.check('models');
    const models = this.registry.list();
    if (models.length === 0) return check.down({ message: 'the model repository holds no models' });
    const failing: Record<string, string> = {};
    for (const model of models) {
      if (this.registry.serves(model)) continue;
      const { state, reason } = this.registry.stateOf(model);
      failing[model.name] = reason ? `${state}: ${reason}` : state;
    }
    const ready = models.map((m) => m.name).filter((name) => !(name in failing));
    return Object.keys(failing).length === 0 ? check.up({ ready }) : check.down({ ready, failing });
  }

  /** Up once no model is still loading, whatever the outcome: the startup probe's question. */
  loading(): HealthIndicatorResult {
    const check = this.health.check('loading');
    const loading = this.registry
      .list()
      .filter((m) => this.registry.stateOf(m).state === 'LOADING')
      .map((m) => m.name);
    return loading.length === 0 ? check.up() : check.down({ loading });
  }

  /**
   * With REDIS_URL, whether Redis answers a PING within a second. Down only when READY_REQUIRES_REDIS:
   * predictions still work without the cache, so an operator may rather keep the pod serving.
   */
  async cache(): Promise<HealthIndicatorResult> {
    const check = this.health.check('cache');
    if (this.store.kind === 'memory') return check.up({ store: 'memory' });
    try {
      await withTimeout(this.store.ping(), PING_TIMEOUT_MS, 'Redis PING');
      return check.up({ store: 'redis' });
    } catch (err) {
      const message = `Redis does not answer: ${(err as Error).message}`;
      if (this.config.READY_REQUIRES_REDIS) return check.down({ store: 'redis', message });
      return check.up({
        store: 'redis',
        message: `${message}; predictions are computed uncached (READY_REQUIRES_REDIS=false)`,
      });
    }
  }

  /** Down from the first shutdown signal on. */
  shutdown(): HealthIndicatorResult {
    const check = this.health.check('shutdown');
    return this.lifecycle.shuttingDown ? check.down({ message: 'the service is shutting down' }) : check.up();
  }
}
