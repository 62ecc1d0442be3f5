import { DynamicModule, Module } from '@nestjs/common';
import { AppConfig } from './config/app.config';
import { AppConfigModule } from './config/app-config.module';
import { DocsModule } from './docs/docs.module';
import { GrpcModule } from './grpc/grpc.module';
import { HealthModule } from './health/health.module';
import { InferenceProtocolModule } from './inference-protocol/inference-protocol.module';
import { ModelsModule } from './models/models.module';
import { ObservabilityModule } from './observability/observability.module';
import { PredictionModule } from './prediction/prediction.module';
import { RedisRateLimitStorageModule } from './security/redis-rate-limit.storage';
import { SecurityModule } from './security/security.module';

@Module({})
export class AppModule {
  static forRoot(config: AppConfig): DynamicModule {
    return {
      module: AppModule,
      imports: [
        AppConfigModule.forRoot(config),
        ObservabilityModule,
        ModelsModule,
        PredictionModule,
        InferenceProtocolModule,
        HealthModule,
        DocsModule,
        GrpcModule,
        SecurityModule.forRoot(config, config.REDIS_URL ? RedisRateLimitStorageModule : undefined),
      ],
    };
  }
}
