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
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import { Container, type IContainer } from 'kubernetes-models/v1/Container';
import { ObjectMeta } from '@kubernetes-models/apimachinery/apis/meta/v1/ObjectMeta';
import { CONFIG_KEYS, loadConfig } from '../src/config/app.config';
import { parseApiKeys } from '../src/config/api-keys';
import { PROBE_PATHS } from '../src/common/probe-paths';
import { ROOT, startApp } from './support/app';

/**
 * The deployment files (deploy/Dockerfile, docker-compose.yml, deploy/k8s) checked offline: every
 * Kubernetes object against Kubernetes' own OpenAPI schemas (kubernetes-models), and every setting,
 * port and probe path against the service itself.
 */

// js-yaml ships no types; only loadAll is needed.
const { loadAll } = createRequire(__filename)('js-yaml') as { loadAll: (text: string) => unknown[] };

type Manifest = {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; labels?: Record<string, string> };
  [key: string]: unknown;
};
type Validatable = { validate(): void };

const K8S_DIR = path.join(ROOT, 'deploy', 'k8s');
const read = (file: string) => readFileSync(path.join(ROOT, file), 'utf8');
const readYaml = (file: string) => loadAll(read(file)).filter((doc) => doc !== null && doc !== undefined) as Manifest[];

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
  'networking.k8s.io/v1/NetworkPolicy': NetworkPolicy,
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

  it('API keys: off as shipped, so a first apply answers without keys rather than 401 everywhere', () => {
    expect(configMap.data.API_KEYS).toBeUndefined();
    expect(configMap.data.API_KEYS_FILE).toBeUndefined();
    expect(loadConfig(configMap.data).apiKeysEnabled()).toBe(false);
    // The shipped Secret is a template: a comment saying what to add, and no key.
    const secret = find<{ stringData: Record<string, string> }>('Secret', 'onnx-inference-api-keys');
    const parsed = parseApiKeys(Object.values(secret.stringData).join('\n'), 'API_KEYS_FILE');
    expect({ problems: parsed.problems, keys: parsed.keys.size }).toEqual({ problems: [], keys: 0 });
    expect(read('deploy/k8s/secret.yaml')).toMatch(/components\/api-keys/);
  });

  it('components/api-keys turns keys on with the Secret mounted as a directory at API_KEYS_FILE', () => {
    const component = readYaml('deploy/k8s/components/api-keys/kustomization.yaml')[0] as {
      kind: string;
      patches: { target: { kind: string; name: string }; patch: string }[];
    };
    expect(component.kind).toBe('Component');
    expect(component.patches.map((p) => p.target)).toEqual([{ kind: 'ConfigMap', name: 'onnx-inference' }]);
    // The JSON patch applied as kustomize would: each op adds one setting to the ConfigMap's data.
    const ops = loadAll(component.patches[0].patch)[0] as { op: string; path: string; value: string }[];
    const data = { ...configMap.data };
    for (const op of ops) {
      expect({ op: op.op, path: op.path.replace(/[^/]+$/, '') }).toEqual({ op: 'add', path: '/data/' });
      data[op.path.slice('/data/'.length)] = op.value;
    }
    const config = loadConfig(data);
    expect(config.apiKeysEnabled()).toBe(true);
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

const RECOMMENDED_LABELS = [
  'app.kubernetes.io/name',
  'app.kubernetes.io/instance',
  'app.kubernetes.io/version',
  'app.kubernetes.io/component',
  'app.kubernetes.io/part-of',
  'app.kubernetes.io/managed-by',
];

type Labelled = { kind?: string; metadata?: { name?: string; labels?: Record<string, string> } };
const labelsOf = (doc: Labelled) => Object.keys(doc.metadata?.labels ?? {}).sort();
const selects = (selector: Record<string, string>, labels: Record<string, string> = {}) =>
  Object.entries(selector).every(([key, value]) => labels[key] === value);

const serviceMonitor = readYaml('deploy/k8s/components/service-monitor/service-monitor.yaml')[0] as Manifest & {
  spec: { selector: { matchLabels: Record<string, string> }; endpoints: { port: string; path: string }[] };
};
const scrapeAnnotations = deployment.spec!.template.metadata!.annotations ?? {};

const KSERVE_DIR = path.join('deploy', 'kserve');
const kserveObjects = readdirSync(path.join(ROOT, KSERVE_DIR))
  .filter((f) => /\.ya?ml$/.test(f))
  .flatMap((file) => readYaml(path.join(KSERVE_DIR, file)));
const servingRuntime = kserveObjects.find((o) => o.kind === 'ServingRuntime') as Manifest & {
  spec: {
    supportedModelFormats: { name: string; version?: string; autoSelect?: boolean }[];
    protocolVersions: string[];
    annotations?: Record<string, string>;
    containers: IContainer[];
  };
};
const inferenceService = kserveObjects.find((o) => o.kind === 'InferenceService') as Manifest & {
  metadata: { annotations?: Record<string, string> };
  spec: {
    predictor: {
      model: {
        modelFormat: { name: string; version?: string };
        runtime: string;
        protocolVersion: string;
        storageUri: string;
      };
    };
  };
};
const servingRuntimeContainer = servingRuntime?.spec.containers[0];

describe('deploy/k8s: conventions', () => {
  const everything = [
    ...objects.map(({ file, doc }) => ({ file, doc })),
    { file: 'components/service-monitor/service-monitor.yaml', doc: serviceMonitor },
    ...kserveObjects.map((doc) => ({ file: `kserve: ${doc.kind}`, doc })),
  ];

  it('every object, and every pod template, carries the app.kubernetes.io recommended labels', () => {
    for (const { file, doc } of everything)
      expect({ file, name: doc.metadata?.name, labels: labelsOf(doc) }).toEqual({
        file,
        name: doc.metadata?.name,
        labels: [...RECOMMENDED_LABELS].sort(),
      });
    for (const name of ['onnx-inference', 'redis']) {
      const template = find<Deployment>('Deployment', name).spec!.template as Labelled;
      expect({ name, labels: labelsOf(template) }).toEqual({ name, labels: [...RECOMMENDED_LABELS].sort() });
    }
    // The version label is the package's, wherever it names this service.
    const { version } = JSON.parse(read('package.json')) as { version: string };
    for (const { doc } of everything.filter(
      ({ doc }) => doc.metadata?.labels?.['app.kubernetes.io/name'] === 'onnx-inference',
    ))
      expect(doc.metadata!.labels!['app.kubernetes.io/version']).toBe(version);
  });

  it('NetworkPolicy: Redis only from the service’s pods, on its port; the service’s pods on their http and grpc ports', () => {
    const policies = objects
      .filter(({ doc }) => doc.kind === 'NetworkPolicy')
      .map(({ doc }) => doc as unknown as NetworkPolicy);
    const redis = find<Deployment>('Deployment', 'redis').spec!.template;
    const api = deployment.spec!.template;

    const forRedis = policies.filter((p) => selects(p.spec!.podSelector.matchLabels ?? {}, redis.metadata!.labels));
    expect(forRedis).toHaveLength(1);
    expect(forRedis[0].spec!.policyTypes).toEqual(['Ingress']);
    const rules = forRedis[0].spec!.ingress ?? [];
    expect(rules).toHaveLength(1);
    // Only pods, no namespace selector or address block: the service's pods in this namespace.
    expect(rules[0].from).toEqual([{ podSelector: expect.anything() }]);
    const from = rules[0].from![0].podSelector!.matchLabels!;
    expect(selects(from, api.metadata!.labels)).toBe(true);
    expect(selects(from, redis.metadata!.labels)).toBe(false);
    const redisPorts = redis.spec!.containers[0].ports!.map((p) => p.name);
    expect(rules[0].ports?.map((p) => p.port)).toEqual(redisPorts);

    const forApi = policies.filter((p) => selects(p.spec!.podSelector.matchLabels ?? {}, api.metadata!.labels));
    expect(forApi).toHaveLength(1);
    expect(forApi[0].spec!.ingress?.map((r) => ({ from: r.from, ports: r.ports?.map((p) => p.port) }))).toEqual([
      { from: undefined, ports: container.ports!.map((p) => p.name) },
    ]);
  });

  it('Prometheus: scrape annotations on the pods and a ServiceMonitor component, on the open /metrics', () => {
    expect(scrapeAnnotations).toEqual({
      'prometheus.io/scrape': 'true',
      'prometheus.io/port': configMap.data.PORT,
      'prometheus.io/path': '/metrics',
    });
    // Scrapers send no API key.
    expect(PROBE_PATHS).toContain(scrapeAnnotations['prometheus.io/path']);

    const component = readYaml('deploy/k8s/components/service-monitor/kustomization.yaml')[0] as {
      kind: string;
      resources: string[];
    };
    expect(component).toEqual(expect.objectContaining({ kind: 'Component', resources: ['service-monitor.yaml'] }));
    // No schema for the Prometheus Operator's CRDs is installed: the fields it relies on are checked here.
    expect([serviceMonitor.apiVersion, serviceMonitor.kind]).toEqual(['monitoring.coreos.com/v1', 'ServiceMonitor']);
    expect(() => new ObjectMeta(serviceMonitor.metadata as never).validate()).not.toThrow();
    const service = find<Service>('Service', 'onnx-inference');
    expect(selects(serviceMonitor.spec.selector.matchLabels, service.metadata!.labels as Record<string, string>)).toBe(
      true,
    );
    const servicePorts = service.spec!.ports!.map((p) => p.name);
    for (const endpoint of serviceMonitor.spec.endpoints) {
      expect(servicePorts).toContain(endpoint.port);
      expect(PROBE_PATHS).toContain(endpoint.path);
    }
  });

  it('the Deployment runs as uid/gid 10000 or above', () => {
    const pod = deployment.spec!.template.spec!.securityContext!;
    expect(pod.runAsUser).toBeGreaterThanOrEqual(10000);
    expect(pod.runAsGroup).toBeGreaterThanOrEqual(10000);
  });
});

describe('deploy/kserve: a ServingRuntime and an InferenceService', () => {
  // kubernetes-models has no KServe types: the objects' own fields are checked here against KServe's
  // API (serving.kserve.io), and what they embed (metadata, the container) against Kubernetes' schemas.
  it('each object is a KServe kind with valid metadata and no namespace', () => {
    expect(kserveObjects.map((o) => `${o.apiVersion} ${o.kind}`).sort()).toEqual([
      'serving.kserve.io/v1alpha1 ServingRuntime',
      'serving.kserve.io/v1beta1 InferenceService',
    ]);
    for (const o of kserveObjects) {
      expect(() => new ObjectMeta(o.metadata as never).validate()).not.toThrow();
      expect((o.metadata as { namespace?: string }).namespace).toBeUndefined();
    }
  });

  it('the ServingRuntime speaks V2 for onnx, in the service’s container, with ports 8000 (HTTP) and 8001 (gRPC)', () => {
    const spec = servingRuntime.spec;
    expect(spec.protocolVersions).toEqual(['v2']);
    expect(spec.supportedModelFormats).toEqual([expect.objectContaining({ name: 'onnx' })]);
    expect(spec.containers).toHaveLength(1);
    const c = servingRuntimeContainer;
    expect(() => new Container(c as never).validate()).not.toThrow();
    // KServe finds the model server by this name (and injects the storage initializer beside it).
    expect(c.name).toBe('kserve-container');
    expect(c.image).toBe(container.image);
    const env = Object.fromEntries((c.env ?? []).map((e) => [e.name, e.value ?? '']));
    expect(Object.keys(env).filter((key) => !(CONFIG_KEYS as string[]).includes(key))).toEqual([]);
    const config = loadConfig(env);
    // Where KServe's storage initializer puts the storageUri's contents.
    expect(config.MODEL_REPOSITORY).toBe('/mnt/models');
    expect(c.ports).toEqual([
      { name: 'http1', containerPort: config.PORT, protocol: 'TCP' },
      { name: 'h2c', containerPort: 8001, protocol: 'TCP' },
    ]);
    expect(config.PORT).toBe(8000);
    expect(probePaths(c)).toEqual({ startup: undefined, liveness: '/v2/health/live', readiness: '/v2/health/ready' });
    expect(c.readinessProbe?.httpGet?.port).toBe(config.PORT);
    expect(c.securityContext?.runAsUser).toBeGreaterThanOrEqual(10000);
    expect(spec.annotations).toEqual({
      'prometheus.kserve.io/port': String(config.PORT),
      'prometheus.kserve.io/path': '/metrics',
    });
  });

  it('the InferenceService asks for that runtime, a format it supports, and V2', () => {
    const model = inferenceService.spec.predictor.model;
    expect(model.runtime).toBe(servingRuntime.metadata!.name);
    expect(servingRuntime.spec.supportedModelFormats).toContainEqual(expect.objectContaining(model.modelFormat));
    expect(servingRuntime.spec.protocolVersions).toContain(model.protocolVersion);
    expect(model.storageUri).toMatch(/^(s3|gs|https?|pvc):\/\/\S+$/);
    // Knative (Serverless mode) admits one container port; the runtime declares two.
    expect(inferenceService.metadata.annotations?.['serving.kserve.io/deploymentMode']).toBe('RawDeployment');
  });
});

describe('deploy/Dockerfile and docker-compose.yml', () => {
  it('the image runs node dist/main.js as uid/gid 10001, the Deployment’s, stops on SIGTERM and checks liveness', () => {
    const [uid, gid] = dockerInstructions('USER').at(-1)!.split(':').map(Number);
    const pod = deployment.spec!.template.spec!.securityContext!;
    expect({ uid, gid }).toEqual({ uid: pod.runAsUser, gid: pod.runAsGroup });
    expect(Math.min(uid, gid)).toBeGreaterThanOrEqual(10000);
    // The image creates that user, so tools that map ids to names find it.
    expect(dockerInstructions('RUN').join('\n')).toMatch(new RegExp(`useradd [^\\n]*--uid ${uid} `));
    expect(dockerInstructions('RUN').join('\n')).toMatch(new RegExp(`groupadd [^\\n]*--gid ${gid} `));
    expect(dockerInstructions('STOPSIGNAL')).toEqual(['SIGTERM']);
    expect(dockerInstructions('CMD').at(-1)).toBe('["node", "dist/main.js"]');
    const healthchecks = dockerInstructions('HEALTHCHECK');
    expect(healthchecks).toHaveLength(1);
    expect(healthchecks[0]).toMatch(/\/health\/live'/);
    // Both `npm ci` runs see package.json, whose allowScripts (npm 11) keeps onnxruntime-node's download
    // from running; the last one omits dev dependencies.
    const copies = dockerInstructions('COPY').filter((c) => c.includes('package-lock.json'));
    expect(copies).toHaveLength(2);
    for (const copy of copies) expect(copy).toContain('package.json');
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
      allowScripts: Record<string, boolean>;
    };
    expect(pkg.allowScripts).toMatchObject({ 'onnxruntime-node': false, protobufjs: false });
    expect(
      dockerInstructions('RUN')
        .filter((r) => r.includes('npm ci'))
        .at(-1),
    ).toContain('--omit=dev');
  });

  it('the image builds and runs on one pinned release of a Node LTS line that package.json supports', () => {
    const froms = dockerInstructions('FROM').map((f) => /^node:(\d+)\.(\d+)\.(\d+)-bookworm-slim\b/.exec(f));
    expect(froms).toHaveLength(2);
    expect(froms.every((m) => m !== null && m[0] === froms[0]![0])).toBe(true);
    const major = Number(froms[0]![1]);
    // Even-numbered lines become LTS; 24 is the active one.
    expect([22, 24]).toContain(major);
    const { engines } = JSON.parse(read('package.json')) as { engines: { node: string } };
    expect(engines.node.split('||').map((range) => range.trim().replace(/^\^/, '').split('.')[0])).toContain(
      String(major),
    );
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
      ...Object.values(probePaths(servingRuntimeContainer)),
      scrapeAnnotations['prometheus.io/path'],
      ...serviceMonitor.spec.endpoints.map((e) => e.path),
    ]),
  ].filter((p): p is string => p !== undefined);

  it.each(paths)('GET %s answers 200', async (probePath) => {
    await request(app.getHttpServer()).get(probePath).expect(200);
  });
});
