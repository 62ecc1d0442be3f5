import { Controller, Get, Header, Param } from '@nestjs/common';
import { ApiExcludeController, type OpenAPIObject } from '@nestjs/swagger';
import { readFile } from 'node:fs/promises';
import { DocsService } from './docs.service';

const REDOC_PAGE = `<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>ONNX inference service: API reference</title>
    <link rel="icon" type="image/png" href="/docs/favicon-32x32.png">
    <style>body { margin: 0; padding: 0; }</style>
  </head>
  <body>
    <redoc spec-url="/docs-json"></redoc>
    <script src="/redoc/redoc.standalone.js"></script>
  </body>
</html>
`;

const REDOC_POLICY = [
  "default-src 'self'",
  "img-src 'self' data:",
  // styled-components writes its styles into the page at run time.
  "style-src 'self' 'unsafe-inline'",
  "worker-src 'self' blob:",
].join('; ');

/**
 * Documentation routes beside Swagger UI's: each model's own document, and ReDoc. Like /docs-json
 * they are not part of the API they document. ReDoc's bundle is served from node_modules: nothing
 * is fetched from elsewhere, by the server or by the browser.
 */
@ApiExcludeController()
@Controller()
export class DocsController {
  private redocBundle?: Promise<string>;

  constructor(private readonly docs: DocsService) {}

  @Get('docs-json')
  @Header('Content-Type', 'application/json; charset=utf-8')
  wholeDocument(): string {
    return this.docs.json();
  }

  @Get('docs-yaml')
  @Header('Content-Type', 'text/yaml; charset=utf-8')
  wholeDocumentYaml(): string {
    return this.docs.yaml();
  }

  @Get('v1/models/:model/openapi.json')
  modelDocument(@Param('model') model: string): OpenAPIObject {
    return this.docs.modelDocument(model);
  }

  @Get('redoc')
  @Header('Content-Type', 'text/html; charset=utf-8')
  // ReDoc's footer shows a logo from its makers' CDN: the policy keeps the page to this service (the logo hides
  // itself).
  @Header('Content-Security-Policy', REDOC_POLICY)
  redoc(): string {
    return REDOC_PAGE;
  }

  @Get('redoc/redoc.standalone.js')
  @Header('Content-Type', 'application/javascript; charset=utf-8')
  @Header('Cache-Control', 'public, max-age=3600')
  redocScript(): Promise<string> {
    // Text, not a Buffer: Nest's Express adapter would answer a Buffer as JSON.
    this.redocBundle ??= readFile(require.resolve('redoc/bundles/redoc.standalone.js'), 'utf8');
    return this.redocBundle;
  }
}
