import type { OpenAPIObject } from '@nestjs/swagger';
import type {
  OperationObject,
  ParameterObject,
  ResponseObject,
} from '@nestjs/swagger/dist/interfaces/open-api-spec.interface';

/** The V2 inference routes, whose bodies may also take the binary tensor data extension's form. */
const INFER_PATHS = ['/v2/models/{model}/infer', '/v2/models/{model}/versions/{version}/infer'];

const BINARY_BODY = {
  schema: {
    type: 'string',
    format: 'binary',
    description:
      'Binary tensor data extension: the JSON request (V2InferRequest, Inference-Header-Content-Length bytes), then ' +
      "the raw little-endian bytes of each input that has parameters.binary_data_size, in input order (BYTES: each element's " +
      '4-byte little-endian length, then its UTF-8). A body without Content-Type is read the same way.',
  },
};

const BINARY_ANSWER = {
  schema: {
    type: 'string',
    format: 'binary',
    description:
      'When any output is asked in binary (parameters.binary_data, or binary_data_output on the request): the JSON ' +
      'answer (V2InferResponse, Inference-Header-Content-Length bytes), then the raw bytes of each binary output in output order',
  },
};

const HEADERS: ParameterObject[] = [
  {
    name: 'Inference-Header-Content-Length',
    in: 'header',
    required: false,
    description: 'Bytes of JSON at the start of a binary request; the rest are the raw input tensors',
    schema: { type: 'integer', minimum: 0 },
  },
  {
    name: 'Content-Encoding',
    in: 'header',
    required: false,
    description: 'gzip or deflate: the body is compressed; inflated, it must still fit BODY_LIMIT (else 413)',
    schema: { type: 'string', enum: ['gzip', 'deflate', 'identity'] },
  },
  {
    name: 'Accept-Encoding',
    in: 'header',
    required: false,
    description: 'gzip or deflate: the answer is compressed so',
    schema: { type: 'string', example: 'gzip' },
  },
];

/**
 * Describes the binary form of the V2 inference routes, which decorators cannot say: a second
 * media type for the body and the answer, with its own (raw) schema, and the headers that frame it.
 */
export function documentBinaryTensors(document: OpenAPIObject): OpenAPIObject {
  for (const path of INFER_PATHS) {
    const operation: OperationObject | undefined = document.paths[path]?.post;
    if (!operation) continue;
    const body = operation.requestBody as { content: Record<string, unknown> } | undefined;
    if (body) body.content['application/octet-stream'] = BINARY_BODY;
    operation.parameters = [...(operation.parameters ?? []), ...HEADERS];
    const ok = operation.responses['200'] as ResponseObject | undefined;
    if (ok) {
      ok.content = { ...ok.content, 'application/octet-stream': BINARY_ANSWER };
      ok.headers = {
        ...ok.headers,
        'Inference-Header-Content-Length': {
          description: 'Bytes of JSON at the start of a binary answer',
          schema: { type: 'integer' },
        },
        'Content-Encoding': {
          description: 'gzip or deflate when Accept-Encoding asked for it',
          schema: { type: 'string', enum: ['gzip', 'deflate'] },
        },
      };
    }
  }
  return document;
}
