import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../lib/config.js';
import { sshHostKey } from '../../app/ssh/host-key.js';
import { sshLinks } from '../../app/ssh/links.js';

describe('BERTH_SSH_PORT and the workspace page’s SSH links', () => {
  it('listens on 2222 unless told another port or off', () => {
    expect(loadConfig({}).BERTH_SSH_PORT).toBe(2222);
    expect(loadConfig({ BERTH_SSH_PORT: '22' }).BERTH_SSH_PORT).toBe(22);
    expect(loadConfig({ BERTH_SSH_PORT: 'off' }).BERTH_SSH_PORT).toBe(0);
    expect(loadConfig({ BERTH_SSH_PORT: '0' }).BERTH_SSH_PORT).toBe(0);
    expect(() => loadConfig({ BERTH_SSH_PORT: 'ssh' })).toThrowError(/BERTH_SSH_PORT: expected a port number, or off/);
    expect(() => loadConfig({ BERTH_SSH_PORT: '70000' })).toThrowError(/BERTH_SSH_PORT: must be at most 65535/);
  });

  it('shows the command and the VS Code link on BERTH_URL’s host, and the host key ssh will see', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-ssh-key-'));
    try {
      const config = { ...loadConfig({ BERTH_URL: 'https://berth.example.com', BERTH_DATA_DIR: dir, BERTH_SSH_PORT: '2200' }) };
      const links = sshLinks(config, 'feature-x-shop')!;
      expect(links.command).toBe('ssh -p 2200 feature-x-shop@berth.example.com');
      expect(links.vscodeUrl).toBe('vscode://vscode-remote/ssh-remote+feature-x-shop@berth.example.com:2200/workspace');
      // the key is made once, kept private, and its fingerprint is OpenSSH's
      const file = path.join(dir, 'ssh-host-key');
      expect(fs.statSync(file).mode & 0o777).toBe(0o600);
      const pub = path.join(dir, 'host.pub');
      fs.writeFileSync(pub, execFileSync('ssh-keygen', ['-y', '-f', file]));
      expect(execFileSync('ssh-keygen', ['-lf', pub], { encoding: 'utf8' })).toContain(links.fingerprint);
      expect(sshHostKey(config).privateKey).toBe(fs.readFileSync(file, 'utf8'));
      expect(sshLinks({ ...config, BERTH_SSH_PORT: 22 }, 'x')!.command).toBe('ssh x@berth.example.com');
      expect(sshLinks({ ...config, BERTH_SSH_PORT: 0 }, 'x')).toBeNull();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
