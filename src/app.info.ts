import { readFileSync } from 'node:fs';
import * as path from 'node:path';

/** Name and version from package.json, found from wherever the compiled code runs. */
function readPackage(): { name: string; version: string; license: string } {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    try {
      const pkg = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as {
        name: string;
        version: string;
        license: string;
      };
      return { name: pkg.name, version: pkg.version, license: pkg.license };
    } catch {
      if (path.dirname(dir) === dir) return { name: 'onnx-inference-service', version: '0.0.0', license: 'MIT' };
    }
  }
}

export const APP_INFO = readPackage();
