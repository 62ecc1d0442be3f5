import { DynamicModule, Module } from '@nestjs/common';
import { AppConfig } from './config/app.config';
import { ConfigModule } from './config/config.module';
import { HealthModule } from './health/health.module';
import { InferenceProtocolModule } from './inference-protocol/inference-protocol.module';
import { ModelsModule } from './models/models.module';
import { ObservabilityModule } from './observability/observability.module';
import { PredictionModule } from './prediction/prediction.module';
import { SecurityModule } from './security/security.module';

@Module({})
export class AppModule {
  static forRoot(config: AppConfig): DynamicModule {
    return { module: AppModule, imports: [ConfigModule.forRoot(config), ObservabilityModule, ModelsModule, PredictionModule, InferenceProtocolModule, HealthModule, SecurityModule.forRoot(config)] };
  }
}
