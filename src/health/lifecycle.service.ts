import { Injectable } from '@nestjs/common';

/**
 * Whether the service is on its way out. Set at the first shutdown signal, before anything
 * closes, so that readiness turns 503 at once and load balancers stop sending traffic while the
 * requests already accepted are still being answered.
 */
@Injectable()
export class LifecycleService {
  private shutdownSince: number | undefined;

  get shuttingDown(): boolean {
    return this.shutdownSince !== undefined;
  }

  beginShutdown(): void {
    this.shutdownSince ??= Date.now();
  }
}
