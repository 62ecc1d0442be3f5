import { INestApplication } from '@nestjs/common';
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import request from 'supertest';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Secret } from 'kubernetes-models/v1/Secret';
import { Service } from 'kubernetes-models/v1/Service';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import type { IContainer } from 'kubernetes-models/v1/Container';
import { CONFIG_KEYS, loadConfig } from '../src/config/app.config';
import { parseApiKeys } from '../src/config/api-keys';
import { ROOT, startApp } from './support/app';

/**
 * The deployment files (deploy/Dockerfile, docker-compose.yml, deploy/k8s) checked offline: every
 * Kubernetes object against Kubernetes' own OpenAPI schemas (kubernetes-models), and every setting,
 * port and probe path against the service itself.
 */

// js-yaml ships no types; only loadAll is needed.
const { loadAll } = createRequire(__filename)('js-yaml') as { loadAll: (text: string) => unknown[] };

type Manifest = { apiVersion?: string; kind?: string; metadata?: { name?: string }; [key: string]: unknown };
type Validatable = { validate(): void };

const K8S_DIR = path.join(ROOT, 'deploy', 'k8s');
const read = (file: string) => readFileSync(path.join(ROOT, file), 'utf8');

const manifestFiles = readdirSync(K8S_DIR)
  .filter((f) => /\.ya?ml$/.test(f))
  .sort();
const documents = manifestFiles.flatMap((file) =>
  loadAll(readFileSync(path.join(K8S_DIR, file), 'utf8'))
    .filter((doc) => doc !== null && doc !== undefined)
    .map((doc) => ({ file, doc: doc as Manifest })),
);
const objects = documents.filter(({ doc }) => doc.kind !== 'Kustomization');

const MODELS: Record<string, new (data: never) => Validatable> = {
  'v1/ConfigMap': ConfigMap,
  'v1/Secret': Secret,
  'v1/Service': Service,
  'apps/v1/Deployment': Deployment,
  'autoscaling/v2/HorizontalPodAutoscaler': HorizontalPodAutoscaler,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
};

function find<T>(kind: string, name: string): T {
  const found = objects.find(({ doc }) => doc.kind === kind && doc.metadata?.name === name);
  if (!found) throw new Error(`no ${kind} ${name} in deploy/k8s`);
  return found.doc as T;
}

const configMap = find<{ data: Record<string, string> }>('ConfigMap', 'onnx-inference');
const deployment = find<Deployment>('Deployment', 'onnx-inference');
const container = deployment.spec!.template.spec!.containers.find((c) => c.name === 'onnx-inference')!;
const dockerfile = read('deploy/Dockerfile');
const compose = loadAll(read('docker-compose.yml'))[0] as {
  services: Record<
    string,
    {
      build?: { dockerfile?: string };
      ports?: string[];
      healthcheck?: { test: string[] };
      depends_on?: unknown;
      image?: string;
      environment?: Record<string, string>;
    }
  >;
};

/** The instruction's arguments, e.g. `EXPOSE 8000` → ['8000'], with line continuations joined. */
function dockerInstructions(name: string): string[] {
  return dockerfile
    .replace(/\\\n/g, ' ')
    .split('\n')
    .filter((line) => new RegExp(`^\\s*${name}\\s`, 'i').test(line))
    .map((line) => line.trim().slice(name.length).trim());
}

const probePaths = (c: IContainer) => ({
  startup: c.startupProbe?.httpGet?.path,
  liveness: c.livenessProbe?.httpGet?.path,
  readiness: c.readinessProbe?.httpGet?.path,
});

describe('deploy/k8s: Kubernetes schemas', () => {
  it('parses every manifest, each object with apiVersion, kind and a name, and no namespace', () => {
    expect(manifestFiles.length).toBeGreaterThan(0);
    for (const { file, doc } of objects) {
      expect({
        file,
        apiVersion: typeof doc.apiVersion,
        kind: typeof doc.kind,
        name: typeof doc.metadata?.name,
      }).toEqual({
        file,
        apiVersion: 'string',
        kind: 'string',
        name: 'string',
      });
      expect({ file, namespace: (doc.metadata as { namespace?: string }).namespace }).toEqual({
        file,
        namespace: undefined,
      });
    }
  });

  it('kustomization.yaml lists every other manifest', () => {
    const kustomization = documents.find(({ doc }) => doc.kind === 'Kustomization')?.doc as
      { resources: string[] } | undefined;
    expect(kustomization).toBeDefined();
    expect([...kustomization!.resources].sort()).toEqual(manifestFiles.filter((f) => f !== 'kustomization.yaml'));
  });

  it.each(objects.map(({ file, doc }) => [`${file}: ${doc.kind} ${doc.metadata?.name}`, doc] as const))(
    '%s is valid against the Kubernetes schema',
    (_label, doc) => {
      const Model = MODELS[`${doc.apiVersion}/${doc.kind}`];
      if (!Model) throw new Error(`no schema known for ${doc.apiVersion} ${doc.kind}: add it to MODELS`);
      expect(() => new Model(doc as never).validate()).not.toThrow();
    },
  );

  it('the validator does reject a wrong object (so the checks above mean something)', () => {
    const broken = structuredClone(deployment) as unknown as {
      spec: { template: { spec: { containers: { ports: { containerPort: unknown }[] }[] } } };
    };
    broken.spec.template.spec.containers[0].ports[0].containerPort = 'eight thousand';
    expect(() => new Deployment(broken as never).validate()).toThrow(/containerPort must be integer/);
    const withoutSelector = structuredClone(deployment) as unknown as { spec: { selector?: unknown } };
    delete withoutSelector.spec.selector;
    expect(() => new Deployment(withoutSelector as never).validate()).toThrow(/selector/);
  });
});

describe('deploy/k8s: against the service', () => {
  it('every ConfigMap key is a setting of the service, and the service accepts every value', () => {
    const keys: string[] = CONFIG_KEYS;
    expect(Object.keys(configMap.data).filter((key) => !keys.includes(key))).toEqual([]);
    const config = loadConfig(configMap.data);
    for (const [key, value] of Object.entries(configMap.data)) {
      expect({ key, value: String((config as unknown as Record<string, unknown>)[key]) }).toEqual({ key, value });
    }
  });

  it('the Deployment runs the image with the ConfigMap, on the named ports http = PORT and grpc = GRPC_PORT, as the Dockerfile EXPOSEs', () => {
    expect(container.image).toBe('onnx-inference-service:0.1.0');
    expect(container.envFrom).toEqual([{ configMapRef: { name: 'onnx-inference' } }]);
    const { PORT, GRPC_PORT } = configMap.data;
    expect(GRPC_PORT).toBe(String(loadConfig({}).GRPC_PORT));
    expect(container.ports).toEqual([
      expect.objectContaining({ name: 'http', containerPort: Number(PORT) }),
      expect.objectContaining({ name: 'grpc', containerPort: Number(GRPC_PORT) }),
    ]);
    expect(dockerInstructions('EXPOSE')).toEqual([`${PORT} ${GRPC_PORT}`]);
    expect(compose.services.api.ports).toEqual([`${PORT}:${PORT}`, `${GRPC_PORT}:${GRPC_PORT}`]);
    // The image carries the .proto files the gRPC service loads at start.
    expect(read('deploy/Dockerfile')).toMatch(/^COPY proto \.\/proto$/m);
  });

  it('the probes use the service’s probe routes on the named port, with time for the models to load', () => {
    expect(probePaths(container)).toEqual({
      startup: '/health/startup',
      liveness: '/health/live',
      readiness: '/health/ready',
    });
    for (const probe of [container.startupProbe, container.livenessProbe, container.readinessProbe])
      expect(probe?.httpGet?.port).toBe('http');
    const startup = container.startupProbe!;
    expect((startup.failureThreshold ?? 3) * (startup.periodSeconds ?? 10)).toBeGreaterThanOrEqual(60);
  });

  it('the pod is given longer to stop than the service’s shutdown grace and timeout', () => {
    const config = loadConfig(configMap.data);
    const grace = deployment.spec!.template.spec!.terminationGracePeriodSeconds ?? 30;
    expect(grace * 1000).toBeGreaterThanOrEqual(config.SHUTDOWN_GRACE_MS + config.SHUTDOWN_TIMEOUT_MS);
  });

  it('the container runs as non-root on a read-only filesystem, without privileges, within limits', () => {
    const pod = deployment.spec!.template.spec!;
    expect(pod.securityContext?.runAsNonRoot).toBe(true);
    expect(container.securityContext).toEqual(
      expect.objectContaining({
        runAsNonRoot: true,
        readOnlyRootFilesystem: true,
        allowPrivilegeEscalation: false,
        capabilities: { drop: ['ALL'] },
      }),
    );
    expect(container.resources?.requests).toEqual({ cpu: '1', memory: '1Gi' });
    expect(container.resources?.limits).toEqual({ cpu: '2', memory: '2Gi' });
  });

  it('the Service targets the named port; the HPA and the PDB cover the Deployment', () => {
    const service = find<Service>('Service', 'onnx-inference');
    expect(service.spec?.type).toBe('ClusterIP');
    expect(service.spec?.ports).toEqual([
      expect.objectContaining({ port: 80, targetPort: 'http' }),
      expect.objectContaining({ port: 8001, targetPort: 'grpc' }),
    ]);
    const podLabels = deployment.spec!.template.metadata!.labels!;
    expect(podLabels).toEqual(expect.objectContaining(service.spec!.selector));
    expect(podLabels).toEqual(expect.objectContaining(deployment.spec!.selector.matchLabels));

    const hpa = find<HorizontalPodAutoscaler>('HorizontalPodAutoscaler', 'onnx-inference');
    expect(hpa.spec?.scaleTargetRef).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', name: 'onnx-inference' });
    expect([hpa.spec?.minReplicas, hpa.spec?.maxReplicas]).toEqual([2, 10]);
    expect(hpa.spec?.metrics).toEqual([
      { type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 70 } } },
    ]);

    const pdb = find<PodDisruptionBudget>('PodDisruptionBudget', 'onnx-inference');
    expect(pdb.spec?.minAvailable).toBe(1);
    expect(podLabels).toEqual(expect.objectContaining(pdb.spec!.selector!.matchLabels));
  });

  it('API keys: from a Secret mounted as a directory at API_KEYS_FILE, never in the ConfigMap, and valid as shipped', () => {
    expect(configMap.data.API_KEYS).toBeUndefined();
    const config = loadConfig(configMap.data);
    const file = config.API_KEYS_FILE!;
    const mount = container.volumeMounts?.find((m) => m.mountPath === path.dirname(file));
    expect(mount).toEqual(expect.objectContaining({ readOnly: true }));
    // subPath mounts never see a rotated Secret.
    expect(mount?.subPath).toBeUndefined();
    const volume = deployment.spec!.template.spec!.volumes?.find((v) => v.name === mount?.name);
    const secret = find<{ metadata: { name: string }; stringData: Record<string, string> }>(
      'Secret',
      volume!.secret!.secretName!,
    );
    expect(Object.keys(secret.stringData)).toEqual([path.basename(file)]);
    const keys = parseApiKeys(secret.stringData[path.basename(file)], 'API_KEYS_FILE');
    expect(keys.problems).toEqual([]);
  });

  it('Redis: a Deployment and a Service named redis, without persistence', () => {
    const redis = find<Deployment>('Deployment', 'redis');
    const args = redis.spec!.template.spec!.containers[0].args ?? [];
    expect(redis.spec!.template.spec!.containers[0].image).toBe('redis:7-alpine');
    expect(args.join(' ')).toContain('--save  --appendonly no');
    expect(find<Service>('Service', 'redis').spec?.ports?.[0]?.port).toBe(6379);
    // The service's REDIS_URL names that Service and port.
    expect(configMap.data.REDIS_URL).toBe('redis://redis:6379');
  });
});

describe('deploy/Dockerfile and docker-compose.yml', () => {
  it('the image runs node dist/main.js as the node user, stops on SIGTERM and checks liveness', () => {
    expect(dockerInstructions('USER').at(-1)).toBe('node');
    expect(dockerInstructions('STOPSIGNAL')).toEqual(['SIGTERM']);
    expect(dockerInstructions('CMD').at(-1)).toBe('["node", "dist/main.js"]');
    const healthchecks = dockerInstructions('HEALTHCHECK');
    expect(healthchecks).toHaveLength(1);
    expect(healthchecks[0]).toMatch(/\/health\/live'/);
    // Both `npm ci` runs see .npmrc (onnxruntime-node-install=skip); the last one omits dev dependencies.
    const copies = dockerInstructions('COPY').filter((c) => c.includes('package-lock.json'));
    expect(copies).toHaveLength(2);
    for (const copy of copies) expect(copy).toContain('.npmrc');
    expect(
      dockerInstructions('RUN')
        .filter((r) => r.includes('npm ci'))
        .at(-1),
    ).toContain('--omit=dev');
  });

  it('compose: api from deploy/Dockerfile, healthy on /health/ready, after a healthy redis:7-alpine', () => {
    const { api, redis } = compose.services;
    expect(api.build?.dockerfile).toBe('deploy/Dockerfile');
    expect(api.healthcheck?.test.join(' ')).toContain('/health/ready');
    expect(api.depends_on).toEqual({ redis: { condition: 'service_healthy' } });
    expect(redis.image).toBe('redis:7-alpine');
    expect(redis.healthcheck?.test).toBeDefined();
    expect(api.environment?.REDIS_URL).toBe('redis://redis:6379');
    expect(Object.keys(api.environment ?? {}).filter((key) => !(CONFIG_KEYS as string[]).includes(key))).toEqual([]);
    loadConfig(api.environment);
  });
});

describe('the probe paths the manifests name are routes of the running service', () => {
  let app: INestApplication;
  beforeAll(async () => {
    app = await startApp();
  });
  afterAll(async () => {
    await app?.close();
  });

  const paths = [
    ...new Set([
      ...Object.values(probePaths(container)),
      ...dockerInstructions('HEALTHCHECK').flatMap((h) => /\/health\/[a-z]+/.exec(h) ?? []),
      ...compose.services.api.healthcheck!.test.flatMap((t) => /\/health\/[a-z]+/.exec(t) ?? []),
    ]),
  ] as string[];

  it.each(paths)('GET %s answers 200', async (probePath) => {
    await request(app.getHttpServer()).get(probePath).expect(200);
  });
});
