import { DOCS_PATHS } from '../common/probe-paths';
import { openPathMatcher } from '../security/api-key.middleware';
import { ConfigError, loadConfig } from './app.config';
import { usableCpus } from './cpu-count';

describe('loadConfig', () => {
  it('takes documented defaults when nothing is set, and treats empty values as unset', () => {
    const config = loadConfig({ PORT: '', LOG_LEVEL: '  ' });
    expect(config).toMatchObject({
      PORT: 8000,
      HOST: '::',
      MODEL_REPOSITORY: './models',
      DEFAULT_MODEL: 'iris',
      MAX_BATCH_SIZE: 1024,
      BODY_LIMIT: '1mb',
      LOG_LEVEL: 'info',
      CORS_ORIGINS: '*',
      ORT_INTRA_OP_NUM_THREADS: 1,
      ORT_GRAPH_OPTIMIZATION_LEVEL: 'all',
      HTTP_ADAPTER: 'fastify',
      BATCHING_ENABLED: true,
      BATCH_MAX_SIZE: 64,
      BATCH_MAX_QUEUE_DELAY_MS: 0,
      MAX_QUEUE_SIZE: 4096,
      REQUEST_TIMEOUT_MS: 30000,
      CACHE_ENABLED: true,
      CACHE_MAX_ENTRIES: 10000,
      CACHE_TTL_SECONDS: 3600,
      CACHE_KEY_PREFIX: 'onnx-inference:',
      CACHE_TIMEOUT_MS: 50,
      READY_REQUIRES_REDIS: true,
    });
    expect(config.INFERENCE_WORKERS).toBe(Math.max(1, usableCpus() - 1));
    expect(config.REDIS_URL).toBeUndefined();
  });

  it('says which levels LOG_LEVEL lets through', () => {
    expect(loadConfig({}).logsAt('info')).toBe(true);
    expect(loadConfig({}).logsAt('debug')).toBe(false);
    expect(loadConfig({ LOG_LEVEL: 'warn' }).logsAt('info')).toBe(false);
    expect(loadConfig({ LOG_LEVEL: 'warn' }).logsAt('error')).toBe(true);
  });

  it('leaves keys and rate limits off by default, and reads them when set', () => {
    const off = loadConfig({});
    expect(off.apiKeysEnabled()).toBe(false);
    expect(off.RATE_LIMIT_RPM).toBeUndefined();
    expect(off.openPaths()).toEqual([
      '/health',
      '/health/live',
      '/health/ready',
      '/health/startup',
      '/v2/health/live',
      '/v2/health/ready',
      '/metrics',
      ...DOCS_PATHS,
    ]);
    expect(off).toMatchObject({
      MAX_ARRAY_LENGTH: 262144,
      MAX_JSON_CONTAINERS: 16384,
      MAX_CONNECTIONS: 10000,
      REFUSED_BODIES_PER_SECOND: 100,
      MAX_STRING_LENGTH: 65536,
      MAX_HEADER_SIZE: 16384,
      HTTP_REQUEST_TIMEOUT_MS: 30000,
      KEEP_ALIVE_TIMEOUT_MS: 65000,
    });
    const on = loadConfig({
      API_KEYS_FILE: '/etc/keys',
      RATE_LIMIT_RPM: '600',
      AUTH_OPEN_PATHS: '/health/live, /docs*',
    });
    expect(on.apiKeysEnabled()).toBe(true);
    expect(on.RATE_LIMIT_RPM).toBe(600);
    expect(on.openPaths()).toEqual(['/health/live', '/docs*', ...DOCS_PATHS]);
    expect(loadConfig({ AUTH_OPEN_PATHS: '/metrics', DOCS_PUBLIC: 'false' }).openPaths()).toEqual(['/metrics']);
    // A `*` inside a path is the service's own (one segment); AUTH_OPEN_PATHS allows it only at the end.
    expect(() => loadConfig({ AUTH_OPEN_PATHS: '/v1/models/*/predict' })).toThrow(ConfigError);
  });

  it('opens exactly the documentation paths: a `*` inside one segment, at the end any rest', () => {
    const isOpen = openPathMatcher(loadConfig({ AUTH_OPEN_PATHS: '/metrics' }).openPaths());
    const open = ['/metrics', '/docs', '/docs/swagger-ui.css', '/docs-json', '/redoc', '/v1/models/iris/openapi.json'];
    const closed = [
      '/metrics/x',
      '/docsx',
      '/v1/models/iris/predict',
      '/v1/models/openapi.json',
      '/v1/models/iris/versions/1/openapi.json',
      '/v1/models/iris/openapi.jsonx',
      '/v1/models/iris/openapiXjson',
    ];
    expect(open.filter((p) => !isOpen(p))).toEqual([]);
    expect(closed.filter((p) => isOpen(p))).toEqual([]);
  });

  it('reads PUBLIC_URL for the documents’ server, else the relative /', () => {
    expect(loadConfig({}).publicUrl()).toBe('/');
    expect(loadConfig({ PUBLIC_URL: 'https://ml.example.com/inference/' }).publicUrl()).toBe(
      'https://ml.example.com/inference',
    );
    expect(loadConfig({ PUBLIC_URL: 'http://10.0.0.1:8000' }).publicUrl()).toBe('http://10.0.0.1:8000');
    for (const bad of ['ml.example.com', 'ftp://x', 'https://x/?q=1', 'https://x/#top'])
      expect(() => loadConfig({ PUBLIC_URL: bad })).toThrow(/PUBLIC_URL must be an http/);
  });

  it('names a bad API key by its entry, never repeating the value', () => {
    const secret = 'abc:def';
    expect(() => loadConfig({ API_KEYS: `valid-key-0123456789,${secret}` })).toThrow(/API_KEYS entry 2: a key must be/);
    expect(() => loadConfig({ API_KEYS: `valid-key-0123456789,${secret}` })).not.toThrow(/abc/);
    expect(() => loadConfig({ RATE_LIMIT_RPM: '0' })).toThrow(
      /RATE_LIMIT_RPM must be an integer between 1 and 10000000 \(got "0"\)/,
    );
    expect(() => loadConfig({ AUTH_OPEN_PATHS: 'health' })).toThrow(/AUTH_OPEN_PATHS must be comma-separated paths/);
  });

  it('reads REDIS_URL, and never repeats a bad one (it may hold a password)', () => {
    expect(loadConfig({ REDIS_URL: 'redis://cache:6379/2' }).REDIS_URL).toBe('redis://cache:6379/2');
    expect(() => loadConfig({ REDIS_URL: 'user:hunter2@cache:6379' })).toThrow(
      /REDIS_URL must be a redis:\/\/ or rediss:\/\/ URL/,
    );
    expect(() => loadConfig({ REDIS_URL: 'user:hunter2@cache:6379' })).not.toThrow(/hunter2/);
  });

  it('converts numbers and keeps given strings', () => {
    const config = loadConfig({
      PORT: '9000',
      MAX_BATCH_SIZE: '16',
      MODEL_REPOSITORY: '/srv/models',
      LOG_LEVEL: 'debug',
    });
    expect(config.PORT).toBe(9000);
    expect(config.MAX_BATCH_SIZE).toBe(16);
    expect(config.MODEL_REPOSITORY).toBe('/srv/models');
    expect(config.LOG_LEVEL).toBe('debug');
  });

  it.each([
    ['PORT', 'abc'],
    ['PORT', '70000'],
    ['PORT', '80.5'],
    ['MAX_BATCH_SIZE', '0'],
    ['BODY_LIMIT', 'lots'],
    ['LOG_LEVEL', 'loud'],
    ['LOG_FORMAT', 'xml'],
    ['DEFAULT_MODEL', '../etc'],
    ['ORT_INTRA_OP_NUM_THREADS', '-1'],
    ['ORT_GRAPH_OPTIMIZATION_LEVEL', 'max'],
    ['HTTP_ADAPTER', 'koa'],
    ['INFERENCE_WORKERS', '0'],
    ['BATCHING_ENABLED', 'maybe'],
    ['BATCH_MAX_QUEUE_DELAY_MS', '-1'],
    ['MAX_QUEUE_SIZE', '0'],
    ['REQUEST_TIMEOUT_MS', '0'],
    ['CACHE_ENABLED', 'sometimes'],
    ['CACHE_MAX_ENTRIES', '0'],
    ['CACHE_TTL_SECONDS', '0'],
    ['CACHE_KEY_PREFIX', 'has space'],
    ['CACHE_TIMEOUT_MS', '0'],
    ['READY_REQUIRES_REDIS', 'perhaps'],
  ])('refuses %s=%s with a message naming the variable and the value', (name, value) => {
    expect(() => loadConfig({ [name]: value })).toThrow(ConfigError);
    expect(() => loadConfig({ [name]: value })).toThrow(
      new RegExp(`${name}[^\\n]*got "${value.replace(/[.]/g, '\\.')}"`),
    );
  });

  it.each([
    ['off', false],
    ['false', false],
    ['0', false],
    ['ON', true],
    ['yes', true],
  ])('reads BATCHING_ENABLED=%s', (value, expected) => {
    expect(loadConfig({ BATCHING_ENABLED: value }).BATCHING_ENABLED).toBe(expected);
  });

  it.each([
    ['1mb', 1048576],
    ['512kb', 524288],
    ['1.5mb', 1572864],
    ['2048', 2048],
  ])('reads BODY_LIMIT=%s as %i bytes', (value, bytes) => {
    expect(loadConfig({ BODY_LIMIT: value }).bodyLimitBytes()).toBe(bytes);
  });

  it('reports every bad variable at once', () => {
    expect(() => loadConfig({ PORT: 'x', LOG_LEVEL: 'y' })).toThrow(/PORT[\s\S]*LOG_LEVEL/);
  });

  it.each([
    ['*', true],
    ['', true],
    ['none', false],
    ['https://a.example, https://b.example', ['https://a.example', 'https://b.example']],
  ])('reads CORS_ORIGINS=%j', (value, expected) => {
    expect(loadConfig({ CORS_ORIGINS: value }).corsOrigins()).toEqual(expected);
  });
});
