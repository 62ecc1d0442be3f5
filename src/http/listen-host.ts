import { createServer } from 'node:net';
import { AppConfig } from '../config/app.config';

/** HOST's default: every address of both families, where the system has IPv6. */
export const DUAL_STACK = '::';
const IPV4_ANY = '0.0.0.0';

/** Whether a socket can listen on IPv6's any-address here (a kernel or container without IPv6 refuses). */
export function ipv6Available(): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once('error', () => resolve(false));
    probe.listen({ host: DUAL_STACK, port: 0 }, () => probe.close(() => resolve(true)));
  });
}

/**
 * The settings with the address HTTP and gRPC will listen on: HOST as given, except that `::` (the
 * default), which on Linux also accepts IPv4 connections, becomes `0.0.0.0` where there is no IPv6,
 * so that the default starts everywhere. `fellBack` says whether it did, for the log.
 */
export async function withListenHost(config: AppConfig): Promise<{ config: AppConfig; fellBack: boolean }> {
  if (config.HOST !== DUAL_STACK || (await ipv6Available())) return { config, fellBack: false };
  return {
    config: Object.assign(Object.create(AppConfig.prototype) as AppConfig, config, { HOST: IPV4_ANY }),
    fellBack: true,
  };
}

/** An address as it is written in a URL or a gRPC target: IPv6 in brackets. */
export const hostInUrl = (host: string): string => (host.includes(':') ? `[${host}]` : host);
