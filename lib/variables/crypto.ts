import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { BerthConfig } from '../config.js';
import { BerthError, ConfigurationError } from '../errors.js';
import { gcmOpen, gcmSeal } from '../crypto-box.js';

/**
 * Encryption at rest of variables and secrets: AES-256-GCM with a random 96-bit IV per value.
 *
 * Each stored value names the key it was written with (a key id: the first 16 hex digits of the
 * key's SHA-256), so a rotation is: set the new key as BERTH_SECRETS_KEY and the old one in
 * BERTH_SECRETS_KEY_OLD; values written before stay readable and are re-encrypted with the new
 * key when Berth starts (rotateVariables). The identity of the variable (layer, name, branches)
 * is GCM's additional data: a ciphertext copied onto another row does not decrypt there, so a
 * value can be unreadable (a lost key, a damaged row) but never the wrong one.
 */
export interface SecretsKeys {
  /** the key new values are written with */
  current: Key;
  /** every key that can read, by id (the current one included) */
  byId: Map<string, Key>;
}

interface Key {
  id: string;
  bytes: Buffer;
}

const FORMAT = 'v1';

/** A stored value that cannot be read: its key is not among Berth's, or it was tampered with. */
export class VariableDecryptError extends BerthError {
  constructor(message: string) {
    super(message, 'variable_decrypt');
  }
}

export function keyFrom(text: string): Key {
  const t = text.trim();
  const bytes = /^[0-9a-f]{64}$/i.test(t) ? Buffer.from(t, 'hex') : Buffer.from(t, 'base64');
  if (bytes.length !== 32) throw new ConfigurationError('BERTH_SECRETS_KEY: must be 32 bytes as 64 hex characters or base64 (openssl rand -base64 32)');
  return { id: createHash('sha256').update(bytes).digest('hex').slice(0, 16), bytes };
}

/**
 * The keys of this Berth: BERTH_SECRETS_KEY (else a random key created once and kept in
 * BERTH_DATA_DIR/secrets-key, like the session secret) and BERTH_SECRETS_KEY_OLD.
 */
export function secretsKeys(config: Pick<BerthConfig, 'BERTH_SECRETS_KEY' | 'BERTH_SECRETS_KEY_OLD' | 'BERTH_DATA_DIR'>): SecretsKeys {
  const current = keyFrom(config.BERTH_SECRETS_KEY ?? keptKey(config.BERTH_DATA_DIR));
  const byId = new Map<string, Key>([[current.id, current]]);
  for (const old of (config.BERTH_SECRETS_KEY_OLD ?? '').split(',').map((s) => s.trim()).filter(Boolean)) {
    const key = keyFrom(old);
    if (!byId.has(key.id)) byId.set(key.id, key);
  }
  return { current, byId };
}

function keptKey(dataDir: string): string {
  const file = join(resolve(dataDir), 'secrets-key');
  try {
    const text = readFileSync(file, 'utf8').trim();
    if (text) return text;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new ConfigurationError(`cannot read ${file}: ${(err as Error).message}`);
  }
  const fresh = randomBytes(32).toString('base64');
  try {
    mkdirSync(resolve(dataDir), { recursive: true });
    // 'wx': when two processes race, the first one's key wins and the other reads it
    writeFileSync(file, `${fresh}\n`, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return readFileSync(file, 'utf8').trim();
    throw new ConfigurationError(`BERTH_SECRETS_KEY is not set and ${file} cannot be written: ${(err as Error).message}`);
  }
  return fresh;
}

/** `v1.<key id>.<iv>.<tag>.<ciphertext>`, base64url parts */
export function encryptValue(keys: SecretsKeys, plaintext: string, identity: string): { ciphertext: string; keyId: string } {
  const { iv, body, tag } = gcmSeal(keys.current.bytes, plaintext, identity);
  const parts = [FORMAT, keys.current.id, iv, tag, body];
  return { ciphertext: parts.join('.'), keyId: keys.current.id };
}

/**
 * The plaintext, or a VariableDecryptError saying why not (`what` names the variable for the
 * message). Never returns anything but what was encrypted for this identity.
 */
export function decryptValue(keys: SecretsKeys, stored: string, identity: string, what: string): string {
  const parts = stored.split('.');
  if (parts.length !== 5 || parts[0] !== FORMAT) throw new VariableDecryptError(`the stored value of ${what} is not in a format Berth knows; set it again`);
  const [, keyId, iv, tag, body] = parts as [string, string, string, string, string];
  const key = keys.byId.get(keyId);
  if (!key) {
    throw new VariableDecryptError(
      `the value of ${what} was encrypted with a key Berth does not have (key id ${keyId}; BERTH_SECRETS_KEY changed or .data/secrets-key was lost): ` +
        'give Berth that key again (BERTH_SECRETS_KEY, or BERTH_SECRETS_KEY_OLD during a rotation), or set the value again',
    );
  }
  try {
    return gcmOpen(key.bytes, { iv, body, tag }, identity);
  } catch {
    throw new VariableDecryptError(`the stored value of ${what} does not decrypt (damaged, or copied from another variable); set it again`);
  }
}
