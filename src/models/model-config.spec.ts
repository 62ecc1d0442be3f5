import 'reflect-metadata';
import { parseModelConfig, routingProblem, selectVersions } from './model-config';

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

describe('config.json version_labels and traffic', () => {
  const parse = (extra: unknown) => parseModelConfig(JSON.stringify(extra), 'm/config.json');

  it('reads labels and weights', () => {
    expect(parse({ version_labels: { stable: 1, canary: 2 }, traffic: { '1': 90, '2': 10 } })).toMatchObject({
      version_labels: { stable: 1, canary: 2 },
      traffic: { '1': 90, '2': 10 },
    });
  });

  it.each([
    [{ version_labels: { '2': 1 } }, /version_labels: '2' is not a label name/],
    [{ version_labels: { stable: 0 } }, /version_labels.stable: must be a version number/],
    [{ version_labels: { stable: '1' } }, /version_labels.stable: must be a version number/],
    [{ traffic: {} }, /traffic: must name at least one version/],
    [{ traffic: { v1: 100 } }, /traffic: 'v1' is not a version number/],
    [{ traffic: { '1': -5 } }, /traffic.1: must be a whole, non-negative weight/],
    [{ traffic: { '1': 0.5 } }, /traffic.1: must be a whole, non-negative weight/],
    [{ traffic: { '1': 0, '2': 0 } }, /traffic: at least one weight must be above 0/],
    [{ traffic: [90, 10] }, /traffic/],
  ])('refuses %j, naming what is wrong', (config, message) => {
    expect(() => parse(config)).toThrow(message);
  });

  it('names a label or a weight that points at a version not served', () => {
    const config = parse({ version_labels: { canary: 3 }, traffic: { '1': 100, '3': 0 } });
    expect(routingProblem(config, [1, 2], 'm/config.json')).toBe(
      'm/config.json version_labels.canary names version 3, which is not served (served: 1, 2)',
    );
    // A zero weight sends nothing, so it may name a version that is gone (a rollout's last step).
    expect(routingProblem(parse({ traffic: { '1': 0, '2': 100 } }), [2], 'm/config.json')).toBeUndefined();
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
