import { Injectable } from '@nestjs/common';
import type { OpenAPIObject } from '@nestjs/swagger';
import { ModelNotReadyError } from '../common/domain.errors';
import { Model, ModelRegistry } from '../models/model.registry';
import { modelDocument, TypedModel, withModels } from './model-openapi.builder';

/**
 * The OpenAPI documents. The part Nest scans from the controllers never changes and is built once;
 * the models' typed routes are added on every request from the registry, because models load in
 * the background after start-up and only a READY version has a signature to describe.
 */
@Injectable()
export class DocsService {
  private base?: OpenAPIObject;
  private buildBase?: () => OpenAPIObject;

  constructor(private readonly registry: ModelRegistry) {}

  /** How to build the scanned document; it needs the application, which providers cannot inject. */
  useBase(build: () => OpenAPIObject): void {
    this.buildBase = build;
    this.base = undefined;
  }

  baseDocument(): OpenAPIObject {
    if (!this.buildBase) throw new Error('DocsService.useBase was not called (setupOpenApi does it)');
    return (this.base ??= this.buildBase());
  }

  /** Every route, with the typed routes of each model that is READY now. */
  document(base: OpenAPIObject = this.baseDocument()): OpenAPIObject {
    return withModels(
      base,
      this.registry.list().flatMap((m) => this.typed(m) ?? []),
    );
  }

  /** One model's typed routes alone; unknown models are 404, models not READY 503. */
  modelDocument(name: string): OpenAPIObject {
    const model = this.registry.getModel(name);
    const typed = this.typed(model);
    if (!typed)
      throw new ModelNotReadyError(
        `Model '${name}' has no READY default version to describe yet; its state is ${this.registry.stateOf(model).state}`,
      );
    return modelDocument(this.baseDocument(), typed);
  }

  private typed(model: Model): TypedModel | undefined {
    const entry = model.defaultVersion === undefined ? undefined : model.versions.get(model.defaultVersion);
    if (entry?.state !== 'READY' || !entry.signature) return undefined;
    return {
      name: model.name,
      version: entry.version,
      description: model.config.description,
      signature: entry.signature,
      samples: model.config.samples,
      traffic: model.config.traffic,
    };
  }
}
