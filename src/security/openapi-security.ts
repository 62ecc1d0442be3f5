import type { OpenAPIObject } from '@nestjs/swagger';
import { isProbePath } from '../common/probe-paths';
import { AppConfig } from '../config/app.config';
import { openPathMatcher } from './api-key.middleware';

/** The Open Inference Protocol's routes answer errors in its own shape. */
const errorOf = (route: string) => ({
  $ref: `#/components/schemas/${route.startsWith('/v2') ? 'V2ErrorDto' : 'ErrorResponseDto'}`,
});

/**
 * Declares how to authenticate in the OpenAPI document, so that generated SDKs send keys: two
 * schemes (a Bearer token, the X-API-Key header), required on every operation but the open paths.
 * Without keys configured the requirement lists `{}` as well, which says authentication is
 * optional, as it then is. The 401, 403 and 429 answers are documented where they can occur.
 */
export function documentSecurity(document: OpenAPIObject, config: AppConfig): OpenAPIObject {
  const isOpen = openPathMatcher(config.openPaths());
  document.components = {
    ...document.components,
    securitySchemes: {
      ...document.components?.securitySchemes,
      bearer: {
        type: 'http',
        scheme: 'bearer',
        description: 'An API key as a Bearer token: `Authorization: Bearer <key>`',
      },
      apiKey: { type: 'apiKey', in: 'header', name: 'X-API-Key', description: 'An API key in the X-API-Key header' },
    },
  };
  const required = config.apiKeysEnabled() ? [{ bearer: [] }, { apiKey: [] }] : [{ bearer: [] }, { apiKey: [] }, {}];
  for (const [route, item] of Object.entries(document.paths)) {
    // Path templates ({model}) never match an open path, which are literal.
    const open = isOpen(route);
    const content = { 'application/json': { schema: errorOf(route) } };
    for (const operation of Object.values(item) as { security?: unknown; responses?: Record<string, unknown> }[]) {
      if (typeof operation !== 'object' || operation === null || !('responses' in operation)) continue;
      operation.security = open ? [] : required;
      const responses = (operation.responses ??= {});
      if (!open) {
        responses['401'] ??= { description: 'No API key, or one not in force (when API keys are configured)', content };
        responses['403'] ??= { description: 'The API key is not allowed on this route', content };
      }
      // The probes and the metrics scrape are never rate limited.
      if (!isProbePath(route)) {
        responses['429'] ??= {
          description: 'Rate limit reached (when RATE_LIMIT_RPM is set); retry after the Retry-After header',
          headers: { 'Retry-After': { description: 'Seconds to wait', schema: { type: 'integer' } } },
          content,
        };
      }
    }
  }
  return document;
}
