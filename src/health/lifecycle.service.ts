import { Injectable } from '@nestjs/common';

/**
 * Whether the service is on its way out. Set at the first shutdown signal, before anything
 * closes, so that readiness turns 503 at once and load balancers stop sending traffic while the
 * requests already accepted are still being answered.
 */
@Injectable()
export class LifecycleService {
  private shutdownSince: number | undefined;
  private drainingSince: number | undefined;

  get shuttingDown(): boolean {
    return this.shutdownSince !== undefined;
  }

  beginShutdown(): void {
    this.shutdownSince ??= Date.now();
  }

  /** Past the grace period: every new request is answered 503 SHUTTING_DOWN while the accepted ones finish. */
  get draining(): boolean {
    return this.drainingSince !== undefined;
  }

  beginDraining(): void {
    this.beginShutdown();
    this.drainingSince ??= Date.now();
  }
}
