import { INestApplication } from '@nestjs/common';
import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { ROOT, startApp } from './support/app';

// Asynchronously: the service the examples call runs in this very process.
const run = promisify(execFile);

describe('examples/ against a running service', () => {
  let app: INestApplication;
  let baseUrl: string;

  beforeAll(async () => {
    app = await startApp();
    await app.listen(0, '127.0.0.1');
    baseUrl = await app.getUrl();
  });
  afterAll(() => app.close());

  it('curl.sh: models, a prediction by feature name, a batch, V2 inference and the per-model document', async () => {
    const { stdout } = await run('bash', [path.join(ROOT, 'examples', 'curl.sh'), baseUrl]);
    const answers = stdout.split('\n').filter((line) => line.startsWith('{'));
    expect(
      JSON.parse(answers[0])
        .models.map((m: { name: string }) => m.name)
        .sort(),
    ).toEqual(['digits', 'iris']);
    expect(JSON.parse(answers[1])).toMatchObject({ model: 'iris', label: 'setosa' });
    expect(JSON.parse(answers[2]).predictions.map((p: { label: string }) => p.label)).toEqual([
      'versicolor',
      'virginica',
    ]);
    expect(JSON.parse(answers[3])).toMatchObject({
      model_name: 'iris',
      outputs: [{ name: 'output_label', data: [0, 2] }, { name: 'output_probability' }],
    });
    expect(answers[4]).toMatch(/^\{"openapi":"3\./);
  });

  it('curl.sh takes the base URL from BASE_URL too, and fails when the service does not answer', async () => {
    const { stdout } = await run('bash', [path.join(ROOT, 'examples', 'curl.sh')], {
      env: { ...process.env, BASE_URL: baseUrl },
    });
    expect(stdout).toContain('"label":"setosa"');
    await expect(run('bash', [path.join(ROOT, 'examples', 'curl.sh'), `${baseUrl}/nowhere`])).rejects.toMatchObject({
      code: 22,
    });
  });

  it('predict.ts: the SDK predicts one flower and a batch, and reads a typed error', async () => {
    const { stdout } = await run(
      process.execPath,
      ['-r', 'ts-node/register/transpile-only', path.join(ROOT, 'examples', 'predict.ts'), baseUrl],
      { cwd: ROOT },
    );
    expect(stdout.trim().split('\n')).toEqual([
      expect.stringMatching(/^one flower: setosa \(p=0\.98\d+\)$/),
      'a batch: versicolor, virginica',
      'an unknown model: 404 MODEL_NOT_FOUND',
    ]);
  });
});
