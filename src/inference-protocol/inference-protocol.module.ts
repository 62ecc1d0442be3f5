import { Module } from '@nestjs/common';
import { HealthModule } from '../health/health.module';
import { PredictionModule } from '../prediction/prediction.module';
import { V2Controller } from './v2.controller';

@Module({ imports: [PredictionModule, HealthModule], controllers: [V2Controller] })
export class InferenceProtocolModule {}
