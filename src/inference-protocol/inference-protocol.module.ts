import { Module } from '@nestjs/common';
import { PredictionModule } from '../prediction/prediction.module';
import { V2Controller } from './v2.controller';

@Module({ imports: [PredictionModule], controllers: [V2Controller] })
export class InferenceProtocolModule {}
