/**
 * Failures whose cause a user can fix without reading a log: a full disk. The output of a
 * failed step (`No space left on device`, Node's `ENOSPC`, a quota) is turned into a reason
 * that says which disk and what to do. OOM kills are told apart where Docker reports them.
 */
const DISK_FULL = /no space left on device|\bENOSPC\b|disk quota exceeded|\bEDQUOT\b/i;

export type DiskOwner = 'workspace' | 'host';

const ADVICE: Record<DiskOwner, string> = {
  workspace:
    "the disk is full (no space left on device): the workspace's disk or the Docker host's. Free space (remove files under /workspace from the IDE terminal, or unused images and volumes on the host), then start the workspace again",
  host: "the Docker host's disk is full (no space left on device). Free space on it (unused images and volumes, e.g. docker system prune), then push again or comment /berth rebuild",
};

export function isDiskFull(...texts: Array<string | undefined>): boolean {
  return texts.some((t) => t !== undefined && DISK_FULL.test(t));
}

/** `message`, with what a full disk means added when the message or the output shows one. */
export function explainDiskFull(message: string, output: string | undefined, owner: DiskOwner): string {
  if (!isDiskFull(message, output) || message.includes(ADVICE[owner])) return message;
  return `${message}: ${ADVICE[owner]}`;
}
