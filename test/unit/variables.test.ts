import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { decryptValue, encryptValue, secretsKeys, VariableDecryptError } from '../../lib/variables/crypto.js';
import { badFilePath, branchMatches, referencedNames, resolveLayers, substituteReferences, type LayerEntry } from '../../lib/variables/layers.js';
import { parseRepoConfig } from '../../lib/repo-config.js';
import { loadConfig } from '../../lib/config.js';
import { parseCommands } from '../../app/commands/parse.js';
import { RepoConfigError } from '../../lib/errors.js';

const key = () => randomBytes(32).toString('base64');
const keysOf = (current: string, old: string[] = []) => secretsKeys({ BERTH_SECRETS_KEY: current, BERTH_SECRETS_KEY_OLD: old.join(',') || undefined, BERTH_DATA_DIR: '/nonexistent' });

describe('variables: encryption at rest', () => {
  it('round-trips a value, and the stored text holds neither the value nor a fixed pattern', () => {
    const keys = keysOf(key());
    const a = encryptValue(keys, 'sk_live_hunter2hunter2', 'id-1');
    const b = encryptValue(keys, 'sk_live_hunter2hunter2', 'id-1');
    expect(a.ciphertext).not.toContain('hunter2');
    expect(a.ciphertext).not.toBe(b.ciphertext); // a fresh IV each time
    expect(a.ciphertext.startsWith(`v1.${keys.current.id}.`)).toBe(true);
    expect(decryptValue(keys, a.ciphertext, 'id-1', 'API_KEY')).toBe('sk_live_hunter2hunter2');
  });

  it('a ciphertext copied onto another variable does not decrypt there: unreadable, never the wrong value', () => {
    const keys = keysOf(key());
    const { ciphertext } = encryptValue(keys, 'value of A', 'repo 1 A');
    expect(() => decryptValue(keys, ciphertext, 'repo 1 B', 'B')).toThrow(VariableDecryptError);
    const flipped = ciphertext.slice(0, -2) + (ciphertext.at(-2) === 'A' ? 'B' : 'A') + ciphertext.at(-1);
    expect(() => decryptValue(keys, flipped, 'repo 1 A', 'A')).toThrow(/does not decrypt/);
  });

  it('a lost key makes values unreadable with a message that names the key id and what to do', () => {
    const old = keysOf(key());
    const { ciphertext } = encryptValue(old, 'secret', 'x');
    const other = keysOf(key());
    expect(() => decryptValue(other, ciphertext, 'x', 'API_KEY (repository)')).toThrow(
      new RegExp(`API_KEY \\(repository\\) was encrypted with a key Berth does not have \\(key id ${old.current.id}.*BERTH_SECRETS_KEY_OLD`),
    );
  });

  it('rotation: with the old key in BERTH_SECRETS_KEY_OLD, old values stay readable and new ones use the new key', () => {
    const k1 = key();
    const k2 = key();
    const before = encryptValue(keysOf(k1), 'from k1', 'x');
    const rotated = keysOf(k2, [k1]);
    expect(decryptValue(rotated, before.ciphertext, 'x', 'X')).toBe('from k1');
    expect(encryptValue(rotated, 'new', 'x').keyId).toBe(keysOf(k2).current.id);
  });

  it('without BERTH_SECRETS_KEY a key is created once under the data folder (0600) and reused', () => {
    const dir = mkdtempSync(join(tmpdir(), 'berth-keys-'));
    const a = secretsKeys({ BERTH_DATA_DIR: dir, BERTH_SECRETS_KEY: undefined, BERTH_SECRETS_KEY_OLD: undefined });
    const b = secretsKeys({ BERTH_DATA_DIR: dir, BERTH_SECRETS_KEY: undefined, BERTH_SECRETS_KEY_OLD: undefined });
    expect(a.current.id).toBe(b.current.id);
    expect(statSync(join(dir, 'secrets-key')).mode & 0o777).toBe(0o600);
    expect(Buffer.from(readFileSync(join(dir, 'secrets-key'), 'utf8').trim(), 'base64')).toHaveLength(32);
  });

  it('a malformed BERTH_SECRETS_KEY stops Berth with the variable and what it must be', () => {
    expect(() => loadConfig({ BERTH_SECRETS_KEY: 'too short' } as NodeJS.ProcessEnv)).toThrow(/BERTH_SECRETS_KEY: must be 32 bytes/);
    expect(() => loadConfig({ BERTH_SECRETS_KEY: 'a'.repeat(64), BERTH_SECRETS_KEY_OLD: 'nope' } as NodeJS.ProcessEnv)).toThrow(/BERTH_SECRETS_KEY_OLD/);
    expect(loadConfig({ BERTH_SECRETS_KEY: 'a'.repeat(64) } as NodeJS.ProcessEnv).BERTH_SECRETS_KEY).toBe('a'.repeat(64));
  });
});

describe('variables: layers', () => {
  const e = (name: string, repositoryId: bigint | null, branches: string[] = [], tag = ''): LayerEntry & { tag: string } => ({ name, repositoryId, branches, secret: true, tag });

  it('branch patterns: * stops at /, ** does not, everything else is literal', () => {
    expect(branchMatches('feature/*', 'feature/login')).toBe(true);
    expect(branchMatches('feature/*', 'feature/a/b')).toBe(false);
    expect(branchMatches('feature/**', 'feature/a/b')).toBe(true);
    expect(branchMatches('main', 'main')).toBe(true);
    expect(branchMatches('main', 'mainline')).toBe(false);
    expect(branchMatches('v1.0', 'v1x0')).toBe(false);
    expect(branchMatches('*', 'pr/12')).toBe(false);
  });

  it('narrower wins: global < global for branches < repository < repository for branches, the most specific pattern first', () => {
    const entries = [
      e('A', null, [], 'global'),
      e('A', 1n, [], 'repo'),
      e('A', 1n, ['feature/*'], 'repo feature/*'),
      e('A', 1n, ['feature/login'], 'repo feature/login'),
      e('B', null, [], 'global'),
      e('B', null, ['main'], 'global main'),
      e('C', 1n, ['release/*'], 'repo release'),
    ];
    const at = (branch: string) => Object.fromEntries([...resolveLayers(entries, branch)].map(([n, x]) => [n, x.tag]));
    expect(at('feature/login')).toEqual({ A: 'repo feature/login', B: 'global' });
    expect(at('feature/other')).toEqual({ A: 'repo feature/*', B: 'global' });
    expect(at('main')).toEqual({ A: 'repo', B: 'global main' });
    expect(at('release/1')).toEqual({ A: 'repo', B: 'global', C: 'repo release' });
  });

  it('references: ${{ secrets.NAME }} is found and filled in; a name without a value becomes empty', () => {
    expect(referencedNames('postgres://u:${{ secrets.DB_PASS }}@db/${{secrets.DB}}')).toEqual(['DB_PASS', 'DB']);
    expect(substituteReferences('x=${{ secrets.A }};y=${{ secrets.B }}', new Map([['A', '1']]))).toBe('x=1;y=');
  });

  it('file paths stay inside /workspace and out of .git', () => {
    expect(badFilePath('config/.env')).toBeNull();
    expect(badFilePath('/etc/passwd')).toMatch(/relative/);
    expect(badFilePath('a/../../x')).toMatch(/leave the workspace/);
    expect(badFilePath('..')).toMatch(/leave the workspace/);
    expect(badFilePath('.git/hooks/post-checkout')).toMatch(/\.git/);
    expect(badFilePath('a//b')).toMatch(/empty/);
  });
});

describe('variables: berth.yml and commands', () => {
  const yml = (extra: string, env = '{ NODE_ENV: development }') => `services:\n  web:\n    build: .\n    port: 3000\n    env: ${env}\n${extra}`;

  it('required: lists names; env values may name a secret', () => {
    const config = parseRepoConfig(yml('required: [API_KEY, SMTP_PASSWORD]\n', "{ KEY: '${{ secrets.API_KEY }}' }"));
    expect(config.required).toEqual(['API_KEY', 'SMTP_PASSWORD']);
    expect(config.services[0]!.env.KEY).toBe('${{ secrets.API_KEY }}');
  });

  it('a bad required name, another ${{ }} expression, or a secret in a build arg fails with file, line and reason', () => {
    expect(() => parseRepoConfig(yml('required: [not-a-name]\n'))).toThrow(RepoConfigError);
    expect(() => parseRepoConfig(yml('required: [not-a-name]\n'))).toThrow(/berth\.yml:6: required\.0: a required variable is a name/);
    expect(() => parseRepoConfig(yml('', "{ KEY: '${{ github.token }}' }"))).toThrow(/berth\.yml:5: services\.web\.env\.KEY: only `\$\{\{ secrets\.NAME \}\}`/);
    const args = "services:\n  web:\n    build: { context: ., args: { T: '${{ secrets.T }}' } }\n    port: 3000\n";
    expect(() => parseRepoConfig(args)).toThrow(/services\.web\.build\.args\.T: secrets never reach a build/);
  });

  it('/berth approve --with-secrets, with or without a commit', () => {
    expect(parseCommands('/berth approve --with-secrets')).toEqual([{ verb: 'approve', withSecrets: true }]);
    expect(parseCommands('/berth approve abcdef1 --with-secrets')).toEqual([{ verb: 'approve', sha: 'abcdef1', withSecrets: true }]);
    expect(parseCommands('/berth approve --with-secrets abcdef1')).toEqual([{ verb: 'approve', sha: 'abcdef1', withSecrets: true }]);
    expect(parseCommands('/berth approve abcdef1')).toEqual([{ verb: 'approve', sha: 'abcdef1' }]);
    expect(parseCommands('/berth approve')).toEqual([{ verb: 'approve' }]);
  });
});
