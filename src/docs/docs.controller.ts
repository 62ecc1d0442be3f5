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
    <style>body { margin: 0; padding: 0; }</style>
  </head>
  <body>
    <redoc spec-url="/docs-json"></redoc>
    <script src="/redoc/redoc.standalone.js"></script>
  </body>
</html>
`;

/**
 * Documentation routes beside Swagger UI's: each model's own document, and ReDoc. Like /docs-json
 * they are not part of the API they document. ReDoc's bundle is served from node_modules: nothing
 * is fetched from elsewhere, by the server or by the browser.
 */
@ApiExcludeController()
@Controller()
export class DocsController {
  private redocBundle?: Promise<Buffer>;

  constructor(private readonly docs: DocsService) {}

  @Get('v1/models/:model/openapi.json')
  modelDocument(@Param('model') model: string): OpenAPIObject {
    return this.docs.modelDocument(model);
  }

  @Get('redoc')
  @Header('Content-Type', 'text/html; charset=utf-8')
  redoc(): string {
    return REDOC_PAGE;
  }

  @Get('redoc/redoc.standalone.js')
  @Header('Content-Type', 'application/javascript; charset=utf-8')
  @Header('Cache-Control', 'public, max-age=3600')
  redocScript(): Promise<Buffer> {
    this.redocBundle ??= readFile(require.resolve('redoc/bundles/redoc.standalone.js'));
    return this.redocBundle;
  }
}
