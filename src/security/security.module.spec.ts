import { Module } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { getOptionsToken, getStorageToken, ThrottlerStorage, ThrottlerStorageService } from '@nestjs/throttler';
import { loadConfig } from '../config/app.config';
import { AppConfigModule } from '../config/app-config.module';
import { ApiKeyStore } from './api-key.store';
import { RATE_LIMIT_STORAGE, SecurityModule } from './security.module';

/** A second store, as a shared (Redis) one would be provided: one instance, exported under the token. */
const shared = new ThrottlerStorageService();
@Module({ providers: [{ provide: RATE_LIMIT_STORAGE, useValue: shared }], exports: [RATE_LIMIT_STORAGE] })
class SharedStorageModule {}

async function compile(env: Record<string, string>, storageModule?: typeof SharedStorageModule) {
  const config = loadConfig(env);
  return Test.createTestingModule({
    imports: [AppConfigModule.forRoot(config), SecurityModule.forRoot(config, storageModule)],
  }).compile();
}

describe('SecurityModule', () => {
  afterAll(() => shared.onApplicationShutdown());

  it('provides nothing when neither keys nor a rate limit are configured', async () => {
    const moduleRef = await compile({});
    expect(() => moduleRef.get(ApiKeyStore, { strict: false })).toThrow();
    expect(() => moduleRef.get(getStorageToken(), { strict: false })).toThrow();
    await moduleRef.close();
  });

  it('limits RATE_LIMIT_RPM per minute, counting in memory by default', async () => {
    const moduleRef = await compile({ RATE_LIMIT_RPM: '5' });
    expect(moduleRef.get(getOptionsToken(), { strict: false })).toMatchObject({
      throttlers: [{ name: 'default', ttl: 60000, limit: 5 }],
    });
    const storage = moduleRef.get<ThrottlerStorage>(getStorageToken(), { strict: false });
    expect(storage).toBeInstanceOf(ThrottlerStorageService);
    expect(storage).not.toBe(shared);
    await moduleRef.close();
  });

  it('counts in the storage a plugged-in module provides (where a shared Redis store goes)', async () => {
    const moduleRef = await compile({ RATE_LIMIT_RPM: '5' }, SharedStorageModule);
    expect(moduleRef.get(getStorageToken(), { strict: false })).toBe(shared);
    const first = await shared.increment('rate-limit:default:ip:1', 60000, 5, 60000, 'default');
    expect(first).toMatchObject({ totalHits: 1, isBlocked: false });
    await moduleRef.close();
  });
});
