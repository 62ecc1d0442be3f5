import { Module } from '@nestjs/common';
import { ModelsModule } from '../models/models.module';
import { HealthController } from './health.controller';

@Module({ imports: [ModelsModule], controllers: [HealthController] })
export class HealthModule {}
