import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { BerthConfig } from '../../lib/config.js';
import { ConfigurationError } from '../../lib/errors.js';

/**
 * The key that signs Berth's cookies: BERTH_SESSION_SECRET, or a random key created once and
 * kept in BERTH_DATA_DIR/session-secret, so sessions survive a restart without setup. Several
 * app processes behind one URL must share it (set the variable, or share the data folder).
 */
export function sessionSecret(config: Pick<BerthConfig, 'BERTH_SESSION_SECRET' | 'BERTH_DATA_DIR'>): Buffer {
  if (config.BERTH_SESSION_SECRET) return Buffer.from(config.BERTH_SESSION_SECRET, 'utf8');
  const file = join(resolve(config.BERTH_DATA_DIR), 'session-secret');
  try {
    const text = readFileSync(file, 'utf8').trim();
    if (text.length >= 32) return Buffer.from(text, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new ConfigurationError(`cannot read ${file}: ${(err as Error).message}`);
  }
  const fresh = randomBytes(32).toString('hex');
  try {
    mkdirSync(resolve(config.BERTH_DATA_DIR), { recursive: true });
    // 'wx': when two processes race, the first one's key wins and the other reads it.
    writeFileSync(file, `${fresh}\n`, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return Buffer.from(readFileSync(file, 'utf8').trim(), 'utf8');
    throw new ConfigurationError(`BERTH_SESSION_SECRET is not set and ${file} cannot be written: ${(err as Error).message}`);
  }
  return Buffer.from(fresh, 'utf8');
}
