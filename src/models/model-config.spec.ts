import 'reflect-metadata';
import { parseModelConfig, selectVersions } from './model-config';

describe('config.json version_policy', () => {
  const policyOf = (policy: unknown) =>
    parseModelConfig(JSON.stringify({ version_policy: policy }), 'm/config.json').version_policy;

  it.each([
    [undefined, [1, 2, 3, 5]],
    [{ all: {} }, [1, 2, 3, 5]],
    [{ latest: { num_versions: 2 } }, [3, 5]],
    [{ latest: { num_versions: 9 } }, [1, 2, 3, 5]],
    [{ specific: { versions: [5, 1, 4] } }, [1, 5]],
  ])('%j serves %j of versions 1, 2, 3, 5', (policy, served) => {
    expect(selectVersions(policy === undefined ? undefined : policyOf(policy), [1, 2, 3, 5])).toEqual(served);
  });

  it.each([
    [{}, /exactly one of all, latest, specific/],
    [{ all: {}, latest: { num_versions: 1 } }, /exactly one of all, latest, specific/],
    [{ latest: { num_versions: 0 } }, /num_versions/],
    [{ specific: { versions: [] } }, /versions/],
    [{ newest: {} }, /newest/],
  ])('refuses %j, naming what is wrong', (policy, message) => {
    expect(() => policyOf(policy)).toThrow(message);
  });
});

describe('config.json instances and placement', () => {
  const parse = (fields: Record<string, unknown>) => parseModelConfig(JSON.stringify(fields), 'm/config.json');

  it('reads them', () => {
    expect(parse({ instances: 1, placement: 'worker' })).toMatchObject({ instances: 1, placement: 'worker' });
    for (const placement of ['auto', 'inline', 'worker']) expect(parse({ placement }).placement).toBe(placement);
  });

  it.each([
    [{ instances: 0 }, /instances/],
    [{ instances: 1.5 }, /instances/],
    [{ instances: '2' }, /instances/],
    [{ placement: 'gpu' }, /placement must be one of auto, inline, worker/],
  ])('refuses %j, naming the field', (fields, message) => {
    expect(() => parse(fields)).toThrow(message);
  });
});
