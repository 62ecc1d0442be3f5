import { Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { PredictionCacheModule } from '../cache/cache.module';
import { ModelsModule } from '../models/models.module';
import { HealthController } from './health.controller';
import { LifecycleService } from './lifecycle.service';
import { ReadinessIndicators } from './readiness.indicators';

@Module({
  // Terminus's own logger would print every failed probe; the 503 body already says why.
  imports: [TerminusModule.forRoot({ logger: false }), ModelsModule, PredictionCacheModule],
  controllers: [HealthController],
  providers: [LifecycleService, ReadinessIndicators],
  exports: [LifecycleService, ReadinessIndicators],
})
export class HealthModule {}
