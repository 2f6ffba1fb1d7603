import { execFileSync } from 'node:child_process';
import os from 'node:os';

/**
 * The host's address on Docker's default bridge (docker0): a server of the tests that
 * workspace containers must reach (the fake GitHub for a `git push` from a terminal) listens
 * there. Containers on a workspace's own bridge network reach it too (it is the host's).
 * Node lists only interfaces that are up and running, and docker0 is "down" while no container
 * uses it, so `ip` is asked when Node does not list it.
 */
export function dockerBridgeAddress(): string {
  const listed = os.networkInterfaces().docker0?.find((a) => a.family === 'IPv4')?.address;
  if (listed) return listed;
  let text = '';
  try {
    text = execFileSync('ip', ['-4', '-o', 'addr', 'show', 'dev', 'docker0'], { encoding: 'utf8', timeout: 5_000 });
  } catch {
    // no `ip`, or no docker0: said below
  }
  const address = /\binet (\d+\.\d+\.\d+\.\d+)\//.exec(text)?.[1];
  if (!address) throw new Error('no IPv4 address on docker0: is dockerd running with its default bridge?');
  return address;
}
