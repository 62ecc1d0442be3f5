/**
 * The TypeScript SDK (clients/typescript) against a running service:
 *
 *   node -r ts-node/register/transpile-only examples/predict.ts [base URL]
 *
 * The base URL is the first argument, else BASE_URL, else http://localhost:8000.
 */
import { createClient, type Schemas } from '../clients/typescript/src';

async function main(): Promise<void> {
  const baseUrl = process.argv[2] ?? process.env.BASE_URL ?? 'http://localhost:8000';
  const client = createClient({ baseUrl });

  // Named features: a misspelt name, a missing one or a string value does not compile.
  const flower: Schemas['IrisFeatures'] = { sepal_length: 5.1, sepal_width: 3.5, petal_length: 1.4, petal_width: 0.2 };
  const one = await client.POST('/v1/models/iris/predict', { body: { features: flower } });
  if (one.error) throw new Error(`predict failed: ${one.error.error}: ${one.error.message}`);
  console.log(`one flower: ${one.data.label} (p=${one.data.probability?.toFixed(4)})`);

  // A batch mixes the forms: a feature array (exactly four numbers) and named features.
  const batch = await client.POST('/v1/models/iris/predict/batch', {
    body: {
      instances: [[7.0, 3.2, 4.7, 1.4], { sepal_length: 6.3, sepal_width: 3.3, petal_length: 6.0, petal_width: 2.5 }],
    },
  });
  if (batch.error) throw new Error(`batch failed: ${batch.error.error}: ${batch.error.message}`);
  console.log(`a batch: ${batch.data.predictions.map((p) => p.label).join(', ')}`);

  // Errors come back typed too: an unknown model is a 404 with a stable code.
  const missing = await client.POST('/v1/models/{model}/predict', {
    params: { path: { model: 'rose' } },
    body: { features: [1, 2, 3, 4] },
  });
  console.log(`an unknown model: ${missing.response.status} ${missing.error?.error}`);
}

main().catch((err: Error) => {
  console.error(err.message);
  process.exit(1);
});
