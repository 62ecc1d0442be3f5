import { Controller, createParamDecorator, ExecutionContext, HttpCode, Param, Post } from '@nestjs/common';
import { ApiBody, ApiOkResponse, ApiOperation, ApiParam, ApiResponse, ApiTags } from '@nestjs/swagger';
import { InvalidInputError } from '../common/domain.errors';
import { findJsonHazard } from '../common/json-guard';
import { wasScanned } from '../common/json-scan';
import { AnyRequest } from '../common/request-context';
import { AppConfig } from '../config/app.config';
import { ModelControlService, RepositoryIndexEntry } from '../models/model-control.service';
import {
  RepositoryIndexEntryDto,
  RepositoryIndexRequestDto,
  RepositoryLoadRequestDto,
  RepositoryLoadResponseDto,
  RepositoryUnloadRequestDto,
  RepositoryUnloadResponseDto,
} from './dto/repository.dto';
import { V2ErrorDto } from './dto/v2.dto';

/**
 * The body as parsed, or undefined when there is none: tritonclient sends load and unload with no
 * body at all, which a DTO-validated body would refuse.
 */
const OptionalBody = createParamDecorator((_: unknown, ctx: ExecutionContext) => {
  const body = (ctx.switchToHttp().getRequest<AnyRequest & { body?: unknown }>() as { body?: unknown }).body;
  return Buffer.isBuffer(body) && body.length === 0 ? undefined : body;
});

const ERRORS = [400, 401, 403, 404].map((status) =>
  ApiResponse({ status, type: V2ErrorDto, description: 'Triton status; body {"error": "..."}' }),
);
function errors(target: object, key: string, descriptor: PropertyDescriptor) {
  for (const decorate of ERRORS) decorate(target, key, descriptor);
}

const asObject = (body: unknown, path: string): Record<string, unknown> => {
  if (body === undefined || body === null) return {};
  if (typeof body !== 'object' || Array.isArray(body)) {
    throw new InvalidInputError('The body must be a JSON object', [{ path, message: `got ${typeof body}` }]);
  }
  return body as Record<string, unknown>;
};

/**
 * Triton's model repository extension: the index in every MODEL_CONTROL_MODE, load and unload
 * only in `explicit` (and with API keys, only with the admin scope: see security/).
 */
@ApiTags('open-inference-protocol')
@Controller('v2/repository')
export class RepositoryController {
  constructor(
    private readonly control: ModelControlService,
    private readonly config: AppConfig,
  ) {}

  @Post('index')
  @HttpCode(200)
  @ApiOperation({
    operationId: 'v2RepositoryIndex',
    summary: 'Repository extension: every model on disk or served, each version with its state and reason',
  })
  @ApiBody({ type: RepositoryIndexRequestDto, required: false })
  @ApiOkResponse({ type: RepositoryIndexEntryDto, isArray: true })
  @errors
  async index(@OptionalBody() raw: unknown): Promise<RepositoryIndexEntry[]> {
    const body = this.checked(raw);
    if (body.ready !== undefined && typeof body.ready !== 'boolean') {
      throw new InvalidInputError('ready must be true or false', [{ path: 'ready', message: 'must be a boolean' }]);
    }
    return this.control.index(body.ready === true);
  }

  @Post('models/:model/load')
  @HttpCode(200)
  @ApiOperation({
    operationId: 'v2RepositoryLoad',
    summary:
      'Repository extension: load the model as it is on disk (MODEL_CONTROL_MODE=explicit); new versions serve once warmed and self-tested',
  })
  @ApiParam({ name: 'model', example: 'iris' })
  @ApiBody({ type: RepositoryLoadRequestDto, required: false })
  @ApiOkResponse({ type: RepositoryLoadResponseDto })
  @errors
  async load(@Param('model') model: string, @OptionalBody() raw: unknown): Promise<RepositoryLoadResponseDto> {
    const parameters = asObject(this.checked(raw).parameters, 'parameters');
    let config: string | undefined;
    const files = new Map<string, Buffer>();
    for (const [key, value] of Object.entries(parameters)) {
      if (key === 'config') {
        if (typeof value === 'string') config = value;
        else if (typeof value === 'object' && value !== null && !Array.isArray(value)) config = JSON.stringify(value);
        else throw new InvalidInputError('parameters.config must be a JSON object or its text', []);
      } else if (key.startsWith('file:')) {
        if (typeof value !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(value) || value.length % 4 !== 0) {
          throw new InvalidInputError(`parameters["${key}"] must be the file's bytes in base64`, [
            { path: `parameters["${key}"]`, message: 'must be a base64 string' },
          ]);
        }
        files.set(key.slice('file:'.length), Buffer.from(value, 'base64'));
      }
      // Other parameters (Triton's own, such as unload_dependents) have no meaning here.
    }
    const outcome = await this.control.load(model, { config, files });
    return {
      name: outcome.model,
      ...(outcome.defaultVersion !== undefined ? { default_version: String(outcome.defaultVersion) } : {}),
      versions: outcome.versions.map((v) => ({ version: String(v.version), state: v.state, reason: v.reason })),
    };
  }

  @Post('models/:model/unload')
  @HttpCode(200)
  @ApiOperation({
    operationId: 'v2RepositoryUnload',
    summary:
      'Repository extension: unload the model (MODEL_CONTROL_MODE=explicit); accepted requests are answered, then its sessions are released',
  })
  @ApiParam({ name: 'model', example: 'iris' })
  @ApiBody({ type: RepositoryUnloadRequestDto, required: false })
  @ApiOkResponse({ type: RepositoryUnloadResponseDto })
  @errors
  async unload(@Param('model') model: string, @OptionalBody() raw: unknown): Promise<RepositoryUnloadResponseDto> {
    this.checked(raw);
    await this.control.unload(model);
    return {};
  }

  /** The same limits as every other JSON body, checked before anything walks it. */
  private checked(raw: unknown): Record<string, unknown> {
    const body = asObject(raw, 'body');
    const hazard = wasScanned(body)
      ? undefined
      : findJsonHazard(body, {
          maxArrayLength: this.config.MAX_ARRAY_LENGTH,
          maxStringLength: this.config.MAX_STRING_LENGTH,
        });
    if (hazard) throw new InvalidInputError('The request body is invalid', [hazard]);
    return body;
  }
}
