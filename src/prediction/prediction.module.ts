import { Module } from '@nestjs/common';
import { ModelsModule } from '../models/models.module';
import { LessonController } from './lesson.controller';
import { ModelsController } from './models.controller';
import { PredictController } from './predict.controller';
import { PredictionService } from './prediction.service';
import { ServiceInfoController } from './service-info.controller';

@Module({
  imports: [ModelsModule],
  controllers: [ServiceInfoController, ModelsController, PredictController, LessonController],
  providers: [PredictionService],
  exports: [PredictionService],
})
export class PredictionModule {}
