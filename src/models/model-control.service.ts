import { Injectable, Logger, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { InvalidInputError, ModelControlDisabledError, ModelNotFoundError } from '../common/domain.errors';
import { MODEL_NAME, VERSION } from '../common/model-names';
import { AppConfig } from '../config/app.config';
import { ModelConfig, parseModelConfig } from './model-config';
import { LoadOutcome, ModelRegistry } from './model.registry';

/** One row of the repository index, as Triton's repository extension reports it. */
export interface RepositoryIndexEntry {
  readonly name: string;
  readonly version?: string;
  /** READY, LOADING or FAILED for versions the server holds; UNAVAILABLE for models it does not serve. */
  readonly state: string;
  readonly reason?: string;
}

/** What a load may bring besides what is on disk: tritonclient's `load_model(config=, files=)`. */
export interface LoadRequest {
  /** config.json's text, used (and written to the repository) instead of the folder's. */
  readonly config?: string;
  /** `<version>/model.onnx` → the file's bytes. */
  readonly files?: ReadonlyMap<string, Buffer>;
}

const UPLOADED_FILE = /^([1-9]\d{0,8})\/model\.onnx$/;

/** A version's fingerprint in a poll: its file's digest, found again only when size or mtime change. */
type Fingerprint = string;

/**
 * The model lifecycle behind every protocol (the REST repository routes; gRPC's RepositoryIndex,
 * Load and Unload): which operations MODEL_CONTROL_MODE allows, uploads written into the
 * repository, and in poll mode the watch on the repository. The registry does the loading itself.
 */
@Injectable()
export class ModelControlService implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(ModelControlService.name);
  private timer: NodeJS.Timeout | undefined;
  private polling: Promise<void> = Promise.resolve();
  /** Per model, the fingerprint last applied and the one seen at the previous poll. */
  private readonly applied = new Map<string, Fingerprint>();
  private readonly seen = new Map<string, Fingerprint>();
  private readonly digests = new Map<string, { stamp: string; digest: string }>();

  constructor(
    private readonly registry: ModelRegistry,
    private readonly config: AppConfig,
  ) {}

  get mode(): AppConfig['MODEL_CONTROL_MODE'] {
    return this.config.MODEL_CONTROL_MODE;
  }

  onApplicationBootstrap(): void {
    if (this.mode !== 'poll') return;
    // What start-up loaded is the applied state; only changes after it count.
    void this.registry.whenLoaded().then(async () => {
      for (const [name, print] of await this.fingerprints()) {
        this.applied.set(name, print);
        this.seen.set(name, print);
      }
      this.timer = setInterval(() => {
        this.polling = this.polling.then(() => this.poll()).catch((err: Error) => this.logger.error(err.message));
      }, this.config.REPOSITORY_POLL_SECONDS * 1000);
      this.timer.unref();
    });
  }

  async onModuleDestroy(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.polling;
  }

  /** Every model on disk or held by the server, and each version's state. `ready` keeps only READY versions. */
  async index(ready = false): Promise<RepositoryIndexEntry[]> {
    const rows: RepositoryIndexEntry[] = [];
    const held = new Set<string>();
    for (const model of this.registry.list()) {
      held.add(model.name);
      for (const v of model.versions.values()) {
        const reason = v.reason ?? (model.loadError ? `the last load was refused: ${model.loadError}` : undefined);
        rows.push({ name: model.name, version: String(v.version), state: v.state, ...(reason ? { reason } : {}) });
      }
      if (model.versions.size === 0) rows.push({ name: model.name, state: 'FAILED', reason: model.problem });
    }
    const onDisk = await this.modelFolders();
    for (const name of new Set([...onDisk, ...this.registry.unloadedModels().keys()])) {
      if (held.has(name)) continue;
      const reason = this.registry.unloadedModels().get(name) ?? 'not loaded';
      rows.push({ name, state: 'UNAVAILABLE', reason });
    }
    rows.sort((a, b) => a.name.localeCompare(b.name) || Number(a.version ?? 0) - Number(b.version ?? 0));
    return ready ? rows.filter((r) => r.state === 'READY') : rows;
  }

  /** Loads the model as it is on disk, after writing what the request uploads. Only in explicit mode. */
  async load(name: string, request: LoadRequest = {}): Promise<LoadOutcome> {
    this.allow('Loading');
    if (!MODEL_NAME.test(name)) throw new ModelNotFoundError(`'${name}' is not a model name`);
    // Parsed before anything is written, so that a bad configuration changes nothing.
    const config: ModelConfig | undefined =
      request.config === undefined ? undefined : this.parseConfig(name, request.config);
    if (request.files?.size || request.config !== undefined) await this.write(name, request);
    return this.registry.load(name, config);
  }

  async unload(name: string): Promise<void> {
    this.allow('Unloading');
    await this.registry.unload(name);
  }

  private allow(what: string): void {
    if (this.mode === 'explicit') return;
    const instead =
      this.mode === 'poll'
        ? 'in poll mode the server applies what changes on disk by itself'
        : 'models are read once at start-up';
    throw new ModelControlDisabledError(
      `${what} a model through the repository API needs MODEL_CONTROL_MODE=explicit; this server runs with ` +
        `MODEL_CONTROL_MODE=${this.mode} (${instead})`,
    );
  }

  private parseConfig(name: string, text: string): ModelConfig {
    try {
      return parseModelConfig(text, `${name}/config.json`);
    } catch (err) {
      throw new InvalidInputError((err as Error).message, [
        { path: 'parameters.config', message: (err as Error).message },
      ]);
    }
  }

  /**
   * Each file lands under its final name by a rename within the model folder, so that neither a
   * reader nor a crash ever sees half of one.
   */
  private async write(name: string, request: LoadRequest): Promise<void> {
    const dir = path.join(this.registry.repositoryRoot, name);
    const targets: [string, Buffer][] = [];
    for (const [file, bytes] of request.files ?? []) {
      const match = UPLOADED_FILE.exec(file);
      if (!match || !VERSION.test(match[1])) {
        throw new InvalidInputError(`Uploaded files must be named file:<version>/model.onnx, got file:${file}`, [
          { path: `parameters["file:${file}"]`, message: 'expected file:<version>/model.onnx' },
        ]);
      }
      targets.push([path.join(dir, match[1], 'model.onnx'), bytes]);
    }
    if (request.config !== undefined) targets.push([path.join(dir, 'config.json'), Buffer.from(request.config)]);
    for (const [target, bytes] of targets) {
      await fs.mkdir(path.dirname(target), { recursive: true });
      const temporary = path.join(dir, `.upload-${randomBytes(6).toString('hex')}`);
      await fs.writeFile(temporary, bytes);
      await fs.rename(temporary, target);
    }
    this.logger.log(`model ${name}: ${targets.length} file(s) written to the repository by a load request`);
  }

  private async modelFolders(): Promise<string[]> {
    const entries = await fs.readdir(this.registry.repositoryRoot, { withFileTypes: true }).catch(() => []);
    return entries.filter((e) => e.isDirectory() && MODEL_NAME.test(e.name)).map((e) => e.name);
  }

  /**
   * One poll: a model is loaded when its fingerprint differs from the one applied and is the same
   * as at the previous poll, so a file still being copied is taken only once it has stopped changing.
   */
  private async poll(): Promise<void> {
    const now = await this.fingerprints();
    for (const name of new Set([...now.keys(), ...this.applied.keys()])) {
      const print = now.get(name) ?? 'absent';
      const stable = this.seen.get(name) === print;
      this.seen.set(name, print);
      if (!stable || this.applied.get(name) === print) continue;
      this.applied.set(name, print);
      if (print === 'absent') this.applied.delete(name);
      this.logger.log(`model ${name} changed on disk; loading`);
      await this.registry.load(name).catch((err: Error) => this.logger.error(err.message));
    }
  }

  /** Per model folder: the digests of config.json and of every version's model.onnx. */
  private async fingerprints(): Promise<Map<string, Fingerprint>> {
    const prints = new Map<string, Fingerprint>();
    const root = this.registry.repositoryRoot;
    for (const name of await this.modelFolders()) {
      const dir = path.join(root, name);
      const parts: string[] = [`config:${await this.digestOf(path.join(dir, 'config.json'))}`];
      const entries = await fs.readdir(dir, { withFileTypes: true }).catch(() => []);
      for (const e of entries.filter((e) => e.isDirectory()).sort((a, b) => a.name.localeCompare(b.name))) {
        parts.push(`${e.name}:${await this.digestOf(path.join(dir, e.name, 'model.onnx'))}`);
      }
      prints.set(name, parts.join(','));
    }
    return prints;
  }

  /**
   * The content digest, hashed again only when size, mtime or inode changed: a touched file with the
   * same bytes is no change, and a large model is not hashed on every poll.
   */
  private async digestOf(file: string): Promise<string> {
    const stat = await fs.stat(file).catch(() => undefined);
    if (!stat?.isFile()) return 'none';
    const stamp = `${stat.size}:${stat.mtimeMs}:${stat.ino}`;
    const known = this.digests.get(file);
    if (known?.stamp === stamp) return known.digest;
    const hash = createHash('sha256');
    try {
      for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
    } catch {
      return 'unreadable';
    }
    const digest = hash.digest('hex');
    this.digests.set(file, { stamp, digest });
    return digest;
  }
}
