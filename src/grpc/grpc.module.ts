import { Module } from '@nestjs/common';
import { HealthModule } from '../health/health.module';
import { PredictionModule } from '../prediction/prediction.module';
import { GrpcServer } from './grpc.server';

/** The Open Inference Protocol over gRPC, beside HTTP: one more thin protocol layer over PredictionService. */
@Module({
  imports: [PredictionModule, HealthModule],
  providers: [GrpcServer],
  exports: [GrpcServer],
})
export class GrpcModule {}
