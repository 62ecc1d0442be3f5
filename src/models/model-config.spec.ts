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
