import { INestApplication } from '@nestjs/common';
import { DocumentBuilder, OpenAPIObject, SwaggerModule } from '@nestjs/swagger';
import { APP_INFO } from './app.info';
import { AppConfig } from './config/app.config';
import { DocsService } from './docs/docs.service';
import { documentBinaryTensors } from './inference-protocol/v2-openapi';
import { documentSecurity } from './security/openapi-security';

export function buildOpenApiDocument(app: INestApplication): OpenAPIObject {
  const appConfig = app.get(AppConfig);
  const config = new DocumentBuilder()
    .setTitle('ONNX inference service')
    .setDescription(
      'Serves the ONNX models of a model repository over REST: model metadata, single and batch predictions, ' +
        'and the routes of the FastAPI lesson this service grew out of. Every error has the body ErrorResponse.',
    )
    .setVersion(APP_INFO.version)
    // package.json's license; each model's document inherits the info object.
    .setLicense(APP_INFO.license, `https://spdx.org/licenses/${APP_INFO.license}.html`)
    // An empty `servers` leaves clients guessing (and fails Redocly's no-empty-servers).
    .addServer(appConfig.publicUrl())
    .build();
  const document = SwaggerModule.createDocument(app, config, {
    operationIdFactory: (_controller, method) => method,
  });
  return documentSecurity(documentBinaryTensors(document), appConfig);
}

/**
 * Swagger UI at /docs; the document at /docs-json and /docs-yaml is served by DocsController from
 * DocsService, which builds it (the scanned routes plus the typed routes of the models READY) once
 * per change of the ready models, and its text once with it, rather than Swagger's per request.
 */
export function setupOpenApi(app: INestApplication): void {
  const docs = app.get(DocsService);
  docs.useBase(() => buildOpenApiDocument(app));
  SwaggerModule.setup('docs', app, () => docs.baseDocument(), {
    raw: false,
    patchDocumentOnRequest: () => docs.document(),
  });
}
