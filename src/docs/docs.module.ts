import { Module } from '@nestjs/common';
import { ModelsModule } from '../models/models.module';
import { DocsController } from './docs.controller';
import { DocsService } from './docs.service';

/** The OpenAPI documents (whole and per model, built from the registry) and ReDoc; setupOpenApi adds Swagger UI. */
@Module({
  imports: [ModelsModule],
  controllers: [DocsController],
  providers: [DocsService],
  exports: [DocsService],
})
export class DocsModule {}
