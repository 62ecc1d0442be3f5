import { Injectable } from '@nestjs/common';
import { HealthIndicatorResult, HealthIndicatorService } from '@nestjs/terminus';
import { ModelRegistry } from '../models/model.registry';
import { LifecycleService } from './lifecycle.service';

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
  ) {}

  /** Up when the repository has models and every one is loaded, warmed and self-tested. */
  models(): HealthIndicatorResult {
    const check = this.health.check('models');
    const models = this.registry.list();
    if (models.length === 0) return check.down({ message: 'the model repository holds no models' });
    const failing: Record<string, string> = {};
    for (const model of models) {
      const { state, reason } = this.registry.stateOf(model);
      if (state !== 'READY') failing[model.name] = reason ? `${state}: ${reason}` : state;
    }
    const ready = models.map((m) => m.name).filter((name) => !(name in failing));
    return Object.keys(failing).length === 0 ? check.up({ ready }) : check.down({ ready, failing });
  }

  /** Up once no model is still loading, whatever the outcome: the startup probe's question. */
  loading(): HealthIndicatorResult {
    const check = this.health.check('loading');
    const loading = this.registry.list().filter((m) => this.registry.stateOf(m).state === 'LOADING').map((m) => m.name);
    return loading.length === 0 ? check.up() : check.down({ loading });
  }

  /** Down from the first shutdown signal on. */
  shutdown(): HealthIndicatorResult {
    const check = this.health.check('shutdown');
    return this.lifecycle.shuttingDown ? check.down({ message: 'the service is shutting down' }) : check.up();
  }
}
