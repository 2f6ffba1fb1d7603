import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../lib/config.js';
import { ConfigurationError } from '../../lib/errors.js';

const key = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();

describe('loadConfig', () => {
  it('starts in setup mode with nothing set', () => {
    const c = loadConfig({});
    expect(c.appConfigured).toBe(false);
    expect(c.BERTH_PREVIEW_DOMAIN).toBe('localhost');
    expect(c.BERTH_IDLE_TIMEOUT).toBe(30 * 60_000);
    expect(c.githubApiUrl).toBe('https://api.github.com');
  });

  it('points at GitHub Enterprise Server with GHE_HOST', () => {
    const c = loadConfig({ GHE_HOST: '127.0.0.1:9999', GHE_PROTOCOL: 'http' });
    expect(c.githubApiUrl).toBe('http://127.0.0.1:9999/api/v3');
  });

  it('wants BERTH_HOST_SECRET (32+ characters) on a worker whose host has an agent URL, and nothing on one machine', () => {
    expect(loadConfig({}).BERTH_HOST_SECRET).toBeUndefined();
    expect(() => loadConfig({ BERTH_HOST_URL: 'http://10.0.0.12:3100' })).toThrowError(/BERTH_HOST_SECRET: required once BERTH_HOST_URL is set/);
    expect(() => loadConfig({ BERTH_HOST_URL: 'http://10.0.0.12:3100', BERTH_HOST_SECRET: 'short' })).toThrowError(/BERTH_HOST_SECRET: must be at least 32 characters/);
    expect(loadConfig({ BERTH_HOST_URL: 'http://10.0.0.12:3100', BERTH_HOST_SECRET: 'k'.repeat(32) }).BERTH_HOST_SECRET).toBe('k'.repeat(32));
    // the web process alone needs it only to reach such hosts (said when one is asked)
    expect(() => loadConfig({ BERTH_ROLE: 'app', BERTH_HOST_URL: 'http://10.0.0.12:3100' })).not.toThrow();
  });

  it('names every invalid variable', () => {
    expect(() => loadConfig({ PORT: 'abc', DATABASE_URL: 'mysql://x', BERTH_IDLE_TIMEOUT: 'soon' })).toThrowError(
      /PORT[\s\S]*DATABASE_URL: must be a postgresql:\/\/ URL[\s\S]*BERTH_IDLE_TIMEOUT/,
    );
  });

  it('has time limits users expect, and refuses a limit of 0 or a PID limit too small to run a dev server', () => {
    const c = loadConfig({});
    expect([c.BERTH_BUILD_TIMEOUT, c.BERTH_PULL_TIMEOUT, c.BERTH_TASK_TIMEOUT, c.BERTH_HEALTH_TIMEOUT, c.BERTH_IDE_TIMEOUT]).toEqual([20 * 60_000, 10 * 60_000, 10 * 60_000, 120_000, 60_000]);
    expect(c.BERTH_PIDS_LIMIT).toBe(1024);
    expect(loadConfig({ BERTH_TASK_TIMEOUT: '90s', BERTH_PIDS_LIMIT: '300' })).toMatchObject({ BERTH_TASK_TIMEOUT: 90_000, BERTH_PIDS_LIMIT: 300 });
    expect(() => loadConfig({ BERTH_TASK_TIMEOUT: '0', BERTH_BUILD_TIMEOUT: 'forever', BERTH_PIDS_LIMIT: '10' })).toThrowError(
      /BERTH_BUILD_TIMEOUT: expected a duration[\s\S]*BERTH_TASK_TIMEOUT: must be longer than 0[\s\S]*BERTH_PIDS_LIMIT: must be at least 64/,
    );
  });

  it('refuses a private key that is not PEM', () => {
    expect(() => loadConfig({ APP_ID: '1', PRIVATE_KEY: 'not a key', WEBHOOK_SECRET: 's' })).toThrowError(ConfigurationError);
    expect(() => loadConfig({ APP_ID: '1', PRIVATE_KEY: 'not a key', WEBHOOK_SECRET: 's' })).toThrowError(/PRIVATE_KEY: not a PEM/);
  });

  it('accepts a PEM key, also base64-encoded, and requires a webhook secret', () => {
    expect(loadConfig({ APP_ID: '1', PRIVATE_KEY: key, WEBHOOK_SECRET: 's' }).appConfigured).toBe(true);
    expect(loadConfig({ APP_ID: '1', PRIVATE_KEY: Buffer.from(key).toString('base64'), WEBHOOK_SECRET: 's' }).privateKey).toContain('BEGIN RSA');
    expect(() => loadConfig({ APP_ID: '1', PRIVATE_KEY: key })).toThrowError(/WEBHOOK_SECRET/);
  });

  it('reports an unreadable PRIVATE_KEY_PATH', () => {
    expect(() => loadConfig({ APP_ID: '1', PRIVATE_KEY_PATH: '/nonexistent/key.pem', WEBHOOK_SECRET: 's' })).toThrowError(/PRIVATE_KEY_PATH: cannot read/);
  });
});
