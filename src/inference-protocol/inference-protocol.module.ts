import { Module } from '@nestjs/common';
import { HealthModule } from '../health/health.module';
import { ModelsModule } from '../models/models.module';
import { PredictionModule } from '../prediction/prediction.module';
import { RepositoryController } from './repository.controller';
import { V2Controller } from './v2.controller';

@Module({ imports: [PredictionModule, HealthModule, ModelsModule], controllers: [V2Controller, RepositoryController] })
export class InferenceProtocolModule {}
