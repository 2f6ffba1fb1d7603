import type { BerthConfig } from '../config.js';
import type { PrismaClient } from '../db/client.js';
import type { Variable } from '../../prisma/generated/client.js';
import { BerthError } from '../errors.js';
import { decryptValue, encryptValue, secretsKeys, type SecretsKeys } from './crypto.js';
import { badFilePath, branchesKey, branchesOf, layerLabel, NAME_PATTERN, RESERVED_PREFIX, resolveLayers, validBranchPattern, type LayerEntry } from './layers.js';

/**
 * The variables and files of the layers in the database, encrypted (crypto.ts). Both processes
 * use it: the app to manage them (API, settings page), the worker to give them to a start.
 */

/** a value or request that cannot be stored: the message says what to change */
export class VariableInputError extends BerthError {
  constructor(message: string) {
    super(message, 'variable_input');
  }
}

/** the largest value (a file's content, a certificate) Berth keeps */
export const MAX_VALUE_BYTES = 64 * 1024;

export interface VariableEntry extends LayerEntry {
  id: string;
  path: string | null;
  buildTime: boolean;
  updatedAt: Date;
  updatedBy: string;
  /** where the value comes from, as pages show it */
  layer: string;
  /** what decrypts the value (kept out of JSON answers: see publicView) */
  row: Variable;
}

export interface PutVariable {
  /** null: the global layer */
  repositoryId: bigint | null;
  name: string;
  branches?: string[];
  /** required for a new entry; unset keeps the stored value */
  value?: string;
  secret?: boolean;
  buildTime?: boolean;
  path?: string | null;
  by: string;
}

const keysByConfig = new WeakMap<object, SecretsKeys>();

/** this Berth's keys, read once per configuration */
export function keysOf(config: Pick<BerthConfig, 'BERTH_SECRETS_KEY' | 'BERTH_SECRETS_KEY_OLD' | 'BERTH_DATA_DIR'>): SecretsKeys {
  let keys = keysByConfig.get(config);
  if (!keys) {
    keys = secretsKeys(config);
    keysByConfig.set(config, keys);
  }
  return keys;
}

const scopeOf = (repositoryId: bigint | null) => (repositoryId === null ? 'global' : String(repositoryId));
/** GCM's additional data: a value decrypts only as the variable it was written for */
const identityOf = (row: Pick<Variable, 'scope' | 'name' | 'branches'>) => `berth-variable\0${row.scope}\0${row.name}\0${row.branches}`;

function entryOf(row: Variable): VariableEntry {
  const branches = branchesOf(row.branches);
  return {
    id: row.id,
    repositoryId: row.repositoryId,
    name: row.name,
    branches,
    secret: row.secret,
    path: row.path,
    buildTime: row.buildTime,
    updatedAt: row.updatedAt,
    updatedBy: row.updatedBy,
    layer: layerLabel({ repositoryId: row.repositoryId, branches }),
    row,
  };
}

export class VariableStore {
  constructor(
    private readonly db: PrismaClient,
    readonly keys: SecretsKeys,
  ) {}

  static of(deps: { db: PrismaClient; config: Pick<BerthConfig, 'BERTH_SECRETS_KEY' | 'BERTH_SECRETS_KEY_OLD' | 'BERTH_DATA_DIR'> }): VariableStore {
    return new VariableStore(deps.db, keysOf(deps.config));
  }

  /** the entries of one layer (a repository, or the global one), names and settings only */
  async list(repositoryId: bigint | null): Promise<VariableEntry[]> {
    const rows = await this.db.variable.findMany({ where: { scope: scopeOf(repositoryId) }, orderBy: [{ name: 'asc' }, { branches: 'asc' }] });
    return rows.map(entryOf);
  }

  async find(repositoryId: bigint | null, name: string, branches: string[] = []): Promise<VariableEntry | null> {
    const row = await this.db.variable.findUnique({ where: { scope_name_branches: { scope: scopeOf(repositoryId), name, branches: branchesKey(branches) } } });
    return row ? entryOf(row) : null;
  }

  /** For each name, the entry a workspace of the repository's `branch` gets (global and repository layers). */
  async resolved(repositoryId: bigint, branch: string): Promise<Map<string, VariableEntry>> {
    const rows = await this.db.variable.findMany({ where: { scope: { in: ['global', scopeOf(repositoryId)] } } });
    return resolveLayers(rows.map(entryOf), branch);
  }

  /** the clear text; a VariableDecryptError (a BerthError) when it cannot be read, never a wrong value */
  value(entry: VariableEntry): string {
    return decryptValue(this.keys, entry.row.ciphertext, identityOf(entry.row), `${entry.name} (${entry.layer})`);
  }

  async put(input: PutVariable): Promise<{ entry: VariableEntry; created: boolean }> {
    if (!NAME_PATTERN.test(input.name)) throw new VariableInputError(`"${input.name.slice(0, 60)}" is not a variable name: letters, digits and _, not starting with a digit`);
    if (input.name.toUpperCase().startsWith(RESERVED_PREFIX)) throw new VariableInputError(`names starting with ${RESERVED_PREFIX} are Berth's own (BERTH_PREVIEW_URL, BERTH_BRANCH, …); choose another name`);
    const branches = input.branches ?? [];
    if (branches.length > 20) throw new VariableInputError('at most 20 branch patterns');
    const bad = branches.find((b) => !validBranchPattern(b.trim()));
    if (bad !== undefined) throw new VariableInputError(`"${bad.slice(0, 60)}" is not a branch pattern (a branch name, * for any characters but /, ** for any)`);
    if (input.path) {
      const why = badFilePath(input.path);
      if (why) throw new VariableInputError(why);
    }
    if (input.value !== undefined && Buffer.byteLength(input.value, 'utf8') > MAX_VALUE_BYTES) throw new VariableInputError(`a value is at most ${MAX_VALUE_BYTES / 1024} KiB`);
    if (input.value !== undefined && input.path == null && input.value.includes('\0')) throw new VariableInputError('an environment variable cannot hold a NUL character');
    const key = { scope: scopeOf(input.repositoryId), name: input.name, branches: branchesKey(branches) };
    const existing = await this.db.variable.findUnique({ where: { scope_name_branches: key } });
    if (!existing && input.value === undefined) throw new VariableInputError(`${input.name} has no value yet: send one`);
    const secret = input.secret ?? existing?.secret ?? true;
    const buildTime = input.buildTime ?? existing?.buildTime ?? false;
    if (secret && buildTime) throw new VariableInputError('a secret never reaches a build: a build-time variable must be marked not secret');
    const path = input.path === undefined ? (existing?.path ?? null) : input.path || null;
    if (path && buildTime) throw new VariableInputError('a file cannot be a build argument');
    const sealed = input.value !== undefined ? encryptValue(this.keys, input.value, identityOf(key)) : { ciphertext: existing!.ciphertext, keyId: existing!.keyId };
    const data = { secret, buildTime, path, ...sealed, updatedBy: input.by };
    const row = await this.db.variable.upsert({
      where: { scope_name_branches: key },
      create: { ...key, repositoryId: input.repositoryId, ...data },
      update: data,
    });
    return { entry: entryOf(row), created: !existing };
  }

  async remove(repositoryId: bigint | null, name: string, branches: string[] = []): Promise<boolean> {
    const { count } = await this.db.variable.deleteMany({ where: { scope: scopeOf(repositoryId), name, branches: branchesKey(branches) } });
    return count > 0;
  }

  /**
   * After a key rotation: values written with an old key are written again with the current one,
   * so the old key can be retired. Values no key reads are left as they are (and say so when used).
   */
  async rotate(): Promise<{ rotated: number; unreadable: number }> {
    const rows = await this.db.variable.findMany({ where: { keyId: { not: this.keys.current.id } } });
    let rotated = 0;
    let unreadable = 0;
    for (const row of rows) {
      let plain: string;
      try {
        plain = decryptValue(this.keys, row.ciphertext, identityOf(row), row.name);
      } catch {
        unreadable++;
        continue;
      }
      const sealed = encryptValue(this.keys, plain, identityOf(row));
      // only if nobody wrote it meanwhile
      const { count } = await this.db.variable.updateMany({ where: { id: row.id, ciphertext: row.ciphertext }, data: sealed });
      rotated += count;
    }
    return { rotated, unreadable };
  }
}
