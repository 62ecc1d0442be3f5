import { Module } from '@nestjs/common';
import { PredictionCacheModule } from '../cache/cache.module';
import { ModelsModule } from '../models/models.module';
import { DefaultModelController } from './default-model.controller';
import { ModelsController } from './models.controller';
import { PredictController } from './predict.controller';
import { PredictionService } from './prediction.service';
import { ServiceInfoController } from './service-info.controller';

@Module({
  imports: [ModelsModule, PredictionCacheModule],
  controllers: [ServiceInfoController, ModelsController, PredictController, DefaultModelController],
  providers: [PredictionService],
  exports: [PredictionService, PredictionCacheModule],
})
export class PredictionModule {}
