import type { IncomingMessage } from 'node:http';
import type { Model } from '../models/model.registry';
import { instanceShape } from '../models/model.types';
import { product } from '../models/tensor-rows';

/** How many values (array elements and object members) a body may hold on its route, and why (for the refusal). */
export interface ElementBudget {
  readonly max: number;
  readonly reason: string;
}

/**
 * Room above what a model takes, and all that the routes without a model's tensors get (the repository's
 * load and unload, unknown paths): their bodies hold a few fields, never tensors.
 */
export const ROOM = 1024;

/**
 * The prediction routes, whose bodies carry a model's instances: the model's name, and whether a batch.
 * In any case, as Express routes them: a path matched here that the router does not route is a 404 anyway.
 */
const V1 = /^\/v1\/models\/([^/?]+)\/(?:(?:versions|labels)\/[^/?]+\/)?predict(\/batch)?\/?(?:\?|$)/i;
const DEFAULT_MODEL = /^\/predict(\/batch)?\/?(?:\?|$)/i;
const V2 = /^\/v2\/models\/([^/?]+)\/(?:versions\/[^/?]+\/)?infer\/?(?:\?|$)/i;

/**
 * Values in one instance of a model (over its inputs), the most of any version with a signature; undefined
 * when some input has a dimension of any size past the batch one, or no version is loaded yet.
 */
function valuesPerInstance(model: Model): number | undefined {
  let most: number | undefined;
  for (const version of model.versions.values()) {
    const signature = version.signature;
    if (signature === undefined) continue;
    let values = 0;
    for (const input of signature.inputs) {
      const shape = instanceShape(input, signature);
      if (shape.includes(-1)) return undefined;
      values += product(shape);
    }
    most = Math.max(most ?? 0, values);
  }
  return most;
}

const decode = (segment: string): string | undefined => {
  try {
    return decodeURIComponent(segment);
  } catch {
    return undefined;
  }
};

/**
 * What a POST body may hold, from its route: on a prediction route, what the model can take (its values per
 * instance, one instance or MAX_BATCH_SIZE of them; nested arrays count their own elements, hence twice
 * over) with ROOM to spare; elsewhere, ROOM. Object members count as values too, so that named features
 * are bounded like arrays. Refused from the elements scanned so far (json-scan.ts), so a
 * body of a million numbers sent to a model that takes four costs the service the first few kilobytes
 * only, instead of a parse and a validation of all of them. Without a bound where a model takes inputs of
 * any size, or is not loaded yet.
 */
export function elementBudget(
  findModel: (name: string) => Model | undefined,
  defaultModel: string | undefined,
  maxBatch: number,
): (req: IncomingMessage) => ElementBudget | undefined {
  return (req) => {
    const url = req.url ?? '';
    let name: string | undefined;
    let instances = maxBatch;
    let match = V1.exec(url);
    if (match) {
      name = decode(match[1]);
      if (match[2] === undefined) instances = 1;
    } else if ((match = DEFAULT_MODEL.exec(url))) {
      name = defaultModel;
      if (match[1] === undefined) instances = 1;
    } else if ((match = V2.exec(url))) {
      name = decode(match[1]);
    } else {
      return { max: ROOM, reason: 'this route takes no tensors' };
    }
    const model = name === undefined ? undefined : findModel(name);
    // Not named back: the name is whatever the client put in the path.
    if (model === undefined) return { max: ROOM, reason: 'no model of that name is served' };
    const values = valuesPerInstance(model);
    if (values === undefined) return undefined;
    return {
      max: instances * (2 * values + 1) + ROOM,
      reason:
        `model '${model.name}' takes ${values} values per instance` +
        (instances === 1 ? ', one instance here' : `, at most MAX_BATCH_SIZE (${maxBatch}) instances`),
    };
  };
}
