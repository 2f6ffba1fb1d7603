import os from 'node:os';

/**
 * The host's address on Docker's default bridge (docker0): a server of the tests that
 * workspace containers must reach (the fake GitHub for a `git push` from a terminal) listens
 * there. Containers on a workspace's own bridge network reach it too (it is the host's).
 */
export function dockerBridgeAddress(): string {
  const address = os.networkInterfaces().docker0?.find((a) => a.family === 'IPv4')?.address;
  if (!address) throw new Error('no IPv4 address on docker0: is dockerd running with its default bridge?');
  return address;
}
