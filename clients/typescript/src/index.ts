import createFetchClient, { type Client, type ClientOptions } from 'openapi-fetch';
import type { components, paths } from './schema';

export type * from './schema';

/** Every schema of the service's document by name: `Schemas['IrisFeatures']`, `Schemas['IrisPrediction']`, ... */
export type Schemas = components['schemas'];

/** A client of the service: `client.POST('/v1/models/iris/predict', { body })`, typed route by route. */
export type InferenceClient = Client<paths>;

/**
 * Creates a client for a running service. `baseUrl` is its root (e.g. http://localhost:8000);
 * `headers` go with every request (an API key, say), and any other openapi-fetch option applies.
 */
export function createClient(options: ClientOptions & { baseUrl: string }): InferenceClient {
  return createFetchClient<paths>(options);
}
