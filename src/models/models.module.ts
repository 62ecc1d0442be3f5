import { Module } from '@nestjs/common';
import { ModelRegistry } from './model.registry';
import { MODEL_RUNTIME } from './runtime/model-runtime.interface';
import { OnnxRuntime } from './runtime/onnx.runtime';

@Module({
  providers: [ModelRegistry, { provide: MODEL_RUNTIME, useClass: OnnxRuntime }],
  exports: [ModelRegistry, MODEL_RUNTIME],
})
export class ModelsModule {}
