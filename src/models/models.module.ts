import { Module } from '@nestjs/common';
import { ModelControlService } from './model-control.service';
import { ModelRegistry } from './model.registry';
import { MODEL_RUNTIME } from './runtime/model-runtime.interface';
import { OnnxRuntime } from './runtime/onnx.runtime';

@Module({
  providers: [ModelRegistry, ModelControlService, { provide: MODEL_RUNTIME, useClass: OnnxRuntime }],
  exports: [ModelRegistry, ModelControlService, MODEL_RUNTIME],
})
export class ModelsModule {}
