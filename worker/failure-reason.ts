/**
 * Failures whose cause a user can fix without reading a log: a full disk. The output of a
 * failed step (`No space left on device`, Node's `ENOSPC`, a quota) is turned into a reason
 * that says which disk is full and what to do about it. OOM kills are told apart where
 * Docker reports them.
 */
import type { DiskPlace, Runtime } from './runtime/types.js';

const DISK_FULL = /no space left on device|\bENOSPC\b|disk quota exceeded|\bEDQUOT\b/i;

/** What failed: a step of a start (clone, migrate, seed), a service that ran, or an image build. */
export type FailureContext = { during: 'start' | 'service'; disk: DiskPlace } | { during: 'build' };

// A failed workspace has no IDE and its disk keeps everything written to it, so "free space
// from the IDE" only helps where the workspace can run again; deleting it always does.
const DELETE = 'delete the workspace (Delete on its dashboard page, or /berth delete) and push again to start over on an empty disk';
const HOST = "the Docker host's disk is full (no space left on device)";
const PRUNE = 'free space on the host (unused images and volumes, e.g. docker system prune)';

function advice(context: FailureContext): string {
  if (context.during === 'build') return `${HOST}. Free space on it (unused images and volumes, e.g. docker system prune), then push again or comment /berth rebuild`;
  const { during, disk } = context;
  if (disk === 'host') return `${HOST}, and the workspace disk is a directory on it: ${PRUNE} or delete workspaces no one needs, then start the workspace again`;
  if (disk === 'own') {
    return during === 'service'
      ? `the workspace disk is full (no space left on device): free space under /workspace from the IDE terminal once the workspace runs again (Start), or ${DELETE}`
      : `the workspace disk is full (no space left on device) and keeps what was written: ${DELETE}; if this step filled it, make it write less first`;
  }
  return `the disk is full (no space left on device): the workspace disk or the Docker host's. Either ${PRUNE}, or ${DELETE}`;
}

export function isDiskFull(...texts: Array<string | undefined>): boolean {
  return texts.some((t) => t !== undefined && DISK_FULL.test(t));
}

/** `message`, with which disk is full and what to do added when the message or the output shows a full disk. */
export function explainDiskFull(message: string, output: string | undefined, context: FailureContext): string {
  const text = advice(context);
  if (!isDiskFull(message, output) || message.includes(text)) return message;
  return `${message}: ${text}`;
}

/** explainDiskFull for a workspace's start or service; asks the engine where its disk lives only when a disk is full. */
export async function explainWorkspaceFailure(
  runtime: Pick<Runtime, 'workspaceDiskPlace'>,
  slug: string,
  during: 'start' | 'service',
  message: string,
  output: string | undefined,
): Promise<string> {
  if (!isDiskFull(message, output)) return message;
  return explainDiskFull(message, output, { during, disk: await runtime.workspaceDiskPlace(slug) });
}
