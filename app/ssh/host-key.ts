import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
// ssh2 is CommonJS: Node's ESM loader gives it as one default export
import ssh2 from 'ssh2';
import type { BerthConfig } from '../../lib/config.js';
import { ConfigurationError } from '../../lib/errors.js';

export interface SshHostKey {
  /** OpenSSH private key text, as ssh2's Server takes it */
  privateKey: string;
  /** `SHA256:…`, as `ssh` prints it when it first meets the host */
  fingerprint: string;
}

const { utils } = ssh2;
const cache = new Map<string, SshHostKey>();

/**
 * The SSH server's host key: an ed25519 key created once and kept in
 * BERTH_DATA_DIR/ssh-host-key (0600), like the session secret, so clients that trusted it once
 * keep trusting it across restarts. Several web processes behind one host name must share the
 * data folder (or the file), or clients see the key change.
 */
export function sshHostKey(config: Pick<BerthConfig, 'BERTH_DATA_DIR'>): SshHostKey {
  const file = join(resolve(config.BERTH_DATA_DIR), 'ssh-host-key');
  const hit = cache.get(file);
  if (hit) return hit;
  let text: string | undefined;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new ConfigurationError(`cannot read ${file}: ${(err as Error).message}`);
  }
  if (!text) {
    const fresh = utils.generateKeyPairSync('ed25519').private;
    try {
      mkdirSync(resolve(config.BERTH_DATA_DIR), { recursive: true });
      // 'wx': when two processes race, the first one's key wins and the other reads it.
      writeFileSync(file, fresh, { mode: 0o600, flag: 'wx' });
      text = fresh;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new ConfigurationError(`the SSH host key ${file} cannot be written: ${(err as Error).message}`);
      text = readFileSync(file, 'utf8');
    }
  }
  const parsed = utils.parseKey(text);
  if (parsed instanceof Error || Array.isArray(parsed)) throw new ConfigurationError(`${file} is not an SSH private key (delete it and Berth makes a new one; clients will then see a new host key)`);
  const key = { privateKey: text, fingerprint: fingerprintOf(parsed.getPublicSSH()) };
  cache.set(file, key);
  return key;
}

/** OpenSSH's SHA256 fingerprint of a public key blob (base64 without padding). */
export function fingerprintOf(publicKeyBlob: Buffer): string {
  return `SHA256:${createHash('sha256').update(publicKeyBlob).digest('base64').replace(/=+$/, '')}`;
}
