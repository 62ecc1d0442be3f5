import { loadSync, Options, PackageDefinition } from '@grpc/proto-loader';
import { protoPath as HEALTH_PROTO } from 'grpc-health-check';
import * as path from 'node:path';

/** The .proto files, at the package's root, which both src/grpc and dist/grpc reach the same way. */
export const PROTO_DIR = path.join(__dirname, '..', '..', 'proto');
export const INFERENCE_PROTO = path.join(PROTO_DIR, 'grpc_service.proto');
export { HEALTH_PROTO };

/**
 * How messages reach the handlers: field names as the .proto spells them (the protocol's own, the
 * same as the REST JSON), 64-bit integers as decimal strings (exact, and what the element-type
 * parsers already take from JSON), enums by name, empty fields present, and which oneof member is set.
 */
export const LOADER_OPTIONS: Options = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
};

/** The inference service's and the health service's definitions, loaded once, for the server and reflection. */
export function loadDefinitions(): PackageDefinition {
  return loadSync([INFERENCE_PROTO, HEALTH_PROTO], LOADER_OPTIONS);
}
