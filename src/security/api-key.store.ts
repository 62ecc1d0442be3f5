import { Injectable, Logger, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import { promises as fs } from 'node:fs';
import { AppConfig } from '../config/app.config';
import { ApiKeySet, hashKey, parseApiKeys, Scope } from '../config/api-keys';

/**
 * The API keys in force: those of API_KEYS and those of API_KEYS_FILE, kept as hashes. The file
 * is re-read every API_KEYS_RELOAD_MS, so a rotated Kubernetes Secret takes effect without a
 * restart (a mounted Secret is swapped by a symlink, which inotify watches can miss; a read of a
 * small file is cheap). A file that cannot be read or parsed keeps the keys already in force;
 * at start it stops the service. Neither a key nor a part of one is ever logged.
 */
export interface KeyMatch {
  readonly id: string;
  readonly scopes: ReadonlySet<Scope>;
}

/** How long a changed key file must read the same before it is taken (see reload). */
const SETTLE_MS = 50;

@Injectable()
export class ApiKeyStore implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger('Security');
  private readonly fromEnv: ApiKeySet;
  private fromFile: ApiKeySet = { keys: new Map(), problems: [] };
  private fileText: string | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly config: AppConfig) {
    this.fromEnv = parseApiKeys(config.API_KEYS ?? '', 'API_KEYS');
  }

  async onModuleInit(): Promise<void> {
    const file = this.config.API_KEYS_FILE;
    if (file === undefined) {
      this.logger.log(`API keys: ${this.fromEnv.keys.size} from API_KEYS`);
      this.warnIfNone();
      return;
    }
    const text = await fs.readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
      throw new Error(`API_KEYS_FILE ${file} cannot be read (${err.code ?? err.message})`);
    });
    const parsed = parseApiKeys(text, 'API_KEYS_FILE');
    if (parsed.problems.length > 0) throw new Error(`API_KEYS_FILE is invalid: ${parsed.problems.join('; ')}`);
    this.fromFile = parsed;
    this.fileText = text;
    this.logger.log(`API keys: ${this.fromEnv.keys.size} from API_KEYS, ${parsed.keys.size} from API_KEYS_FILE`);
    this.warnIfNone();
    this.timer = setInterval(() => void this.reload(), this.config.API_KEYS_RELOAD_MS);
    this.timer.unref();
  }

  /** Keys on with none in force answer 401 on every route but the open ones: say so once, at start. */
  private warnIfNone(): void {
    if (this.fromEnv.keys.size + this.fromFile.keys.size > 0) return;
    this.logger.warn(
      'API keys are on but none is configured: every route except AUTH_OPEN_PATHS answers 401 until a key is ' +
        'added (to API_KEYS, or to API_KEYS_FILE, which is re-read while running)',
    );
  }

  onApplicationShutdown(): void {
    clearInterval(this.timer);
  }

  /**
   * The presented key's scopes and an id for it (a digest, never the key), or undefined for a key
   * not in force. Only a digest of the presented key is compared, so how long a lookup takes says
   * nothing about how close the key came to a real one.
   */
  lookup(presented: string): KeyMatch | undefined {
    const hash = hashKey(presented);
    const scopes = this.fromEnv.keys.get(hash) ?? this.fromFile.keys.get(hash);
    return scopes && { id: hash.slice(0, 32), scopes };
  }

  /** Re-reads API_KEYS_FILE; resolves once the keys in force reflect the file, if it reads the same twice. */
  async reload(): Promise<void> {
    const text = await this.readFile();
    if (text === undefined || text === this.fileText) return;
    // A file rewritten in place can be read half-written (empty, say), which would revoke every key:
    // a change counts only once a second read a moment later finds the same text.
    await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
    if ((await this.readFile()) !== text) return;
    const parsed = parseApiKeys(text, 'API_KEYS_FILE');
    if (parsed.problems.length > 0) {
      this.logger.warn(`API_KEYS_FILE changed but is invalid (${parsed.problems.join('; ')}); the keys in force stay`);
      return;
    }
    this.fromFile = parsed;
    this.fileText = text;
    this.logger.log(`API keys reloaded from API_KEYS_FILE: ${parsed.keys.size} keys`);
  }

  private async readFile(): Promise<string | undefined> {
    try {
      return await fs.readFile(this.config.API_KEYS_FILE!, 'utf8');
    } catch (err) {
      this.logger.warn(
        `API_KEYS_FILE cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'}); the keys in force stay`,
      );
      return undefined;
    }
  }
}
