import type { BerthConfig } from '../../lib/config.js';
import { sshHostKey } from './host-key.js';

export interface SshLinks {
  /** `ssh -p 2222 <slug>@berth.example.com`, to copy */
  command: string;
  /** opens the workspace in VS Code over Remote-SSH */
  vscodeUrl: string;
  /** the host key's fingerprint, to compare with what `ssh` shows on first connect */
  fingerprint: string;
}

/**
 * How to reach a workspace over SSH, on the host name of BERTH_URL; null when Berth's SSH
 * server is off (BERTH_SSH_PORT=off).
 */
export function sshLinks(config: Pick<BerthConfig, 'BERTH_SSH_PORT' | 'BERTH_DATA_DIR' | 'berthUrl'>, slug: string): SshLinks | null {
  if (!config.BERTH_SSH_PORT) return null;
  const host = new URL(config.berthUrl).hostname;
  const port = config.BERTH_SSH_PORT;
  const target = `${slug}@${host}`;
  return {
    command: port === 22 ? `ssh ${target}` : `ssh -p ${port} ${target}`,
    vscodeUrl: `vscode://vscode-remote/ssh-remote+${target}${port === 22 ? '' : `:${port}`}/workspace`,
    fingerprint: sshHostKey(config).fingerprint,
  };
}
