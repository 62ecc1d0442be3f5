import { Injectable } from '@nestjs/common';
import type { OpenAPIObject } from '@nestjs/swagger';
import { dump } from 'js-yaml';
import { ModelNotReadyError } from '../common/domain.errors';
import { Model, ModelRegistry } from '../models/model.registry';
import { modelDocument, TypedModel, withModels } from './model-openapi.builder';

/** A document built for one set of ready models, with its serialisations made when first asked. */
interface Built {
  readonly document: OpenAPIObject;
  json?: string;
  yaml?: string;
}

/**
 * The OpenAPI documents. The part Nest scans from the controllers never changes and is built once;
 * the models' typed routes change as models load in the background, are replaced or unloaded, and
 * only a READY version has a signature to describe. Each document (and its JSON and YAML text) is
 * built once per set of ready models and kept until that set changes: which models are ready is
 * cheap to read on every request, a document is not.
 */
@Injectable()
export class DocsService {
  private base?: OpenAPIObject;
  private buildBase?: () => OpenAPIObject;
  /** The whole document, for the ready models it was built from (their names, versions and signatures). */
  private whole?: { readonly from: readonly TypedModel[]; readonly built: Built };
  private readonly perModel = new Map<string, { readonly from: TypedModel; readonly document: OpenAPIObject }>();

  constructor(private readonly registry: ModelRegistry) {}

  /** How to build the scanned document; it needs the application, which providers cannot inject. */
  useBase(build: () => OpenAPIObject): void {
    this.buildBase = build;
    this.base = undefined;
    this.whole = undefined;
    this.perModel.clear();
  }

  baseDocument(): OpenAPIObject {
    if (!this.buildBase) throw new Error('DocsService.useBase was not called (setupOpenApi does it)');
    return (this.base ??= this.buildBase());
  }

  /** Every route, with the typed routes of each model that is READY now. */
  document(): OpenAPIObject {
    return this.current().document;
  }

  /** document() as JSON text. */
  json(): string {
    const built = this.current();
    return (built.json ??= JSON.stringify(built.document));
  }

  /** document() as YAML text, as Swagger's own /docs-yaml writes it. */
  yaml(): string {
    const built = this.current();
    return (built.yaml ??= dump(built.document, { skipInvalid: true, noRefs: true }));
  }

  /** One model's typed routes alone; unknown models are 404, models not READY 503. */
  modelDocument(name: string): OpenAPIObject {
    const model = this.registry.getModel(name);
    const typed = this.typed(model);
    if (!typed)
      throw new ModelNotReadyError(
        `Model '${name}' has no READY default version to describe yet; its state is ${this.registry.stateOf(model).state}`,
      );
    const kept = this.perModel.get(name);
    if (kept && sameModel(kept.from, typed)) return kept.document;
    const document = modelDocument(this.baseDocument(), typed);
    this.perModel.set(name, { from: typed, document });
    return document;
  }

  private current(): Built {
    const ready = this.registry.list().flatMap((m) => this.typed(m) ?? []);
    const whole = this.whole;
    if (whole && whole.from.length === ready.length && whole.from.every((m, i) => sameModel(m, ready[i]))) {
      return whole.built;
    }
    const built: Built = { document: withModels(this.baseDocument(), ready) };
    this.whole = { from: ready, built };
    return built;
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

/**
 * Whether two reads of a model describe it the same: a load that replaces a version makes a new
 * signature and a new config object, so identity is enough, and costs nothing to compare.
 */
function sameModel(a: TypedModel, b: TypedModel): boolean {
  return (
    a.name === b.name &&
    a.version === b.version &&
    a.description === b.description &&
    a.signature === b.signature &&
    a.samples === b.samples
  );
}
