import { Module } from '@nestjs/common';
import { HealthModule } from '../health/health.module';
import { ModelsModule } from '../models/models.module';
import { PredictionModule } from '../prediction/prediction.module';
import { GrpcServer } from './grpc.server';

/** The Open Inference Protocol over gRPC, beside HTTP: one more thin protocol layer over PredictionService. */
@Module({
  imports: [PredictionModule, HealthModule, ModelsModule],
  providers: [GrpcServer],
  exports: [GrpcServer],
})
export class GrpcModule {}
