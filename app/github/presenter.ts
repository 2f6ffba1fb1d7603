import type { Build, Workspace } from '../../lib/db/client.js';
import { redact } from '../../lib/redact.js';
import { WAITING_FOR_HOST } from '../../lib/hosts/health.js';

/**
 * Pure decisions about what GitHub should show for a workspace and its build; the writer
 * (reporter.ts) only sends what these return.
 */
export type CheckStatus = 'queued' | 'in_progress' | 'completed';
export type CheckConclusion = 'success' | 'failure' | 'cancelled' | 'neutral';

export interface CheckView {
  status: CheckStatus;
  conclusion?: CheckConclusion;
  title: string;
  /** what the summary should say besides the links */
  headline: string;
  logTail?: string;
}

export function checkViewFor(ws: Workspace, build: Build, logTail: string): CheckView {
  if (build.state === 'canceled') return { status: 'completed', conclusion: 'cancelled', title: 'Superseded', headline: build.error ?? 'A newer commit was pushed.' };
  if (build.state === 'failed') {
    return { status: 'completed', conclusion: 'failure', title: `Failed while ${build.step ?? 'building'}`, headline: build.error ?? 'The build failed.', logTail };
  }
  // issue 18: no host can take the workspace yet (worker/jobs/place.ts): the reason names each host's
  if (build.state === 'queued' && !ws.hostId && ws.stateReason?.startsWith(WAITING_FOR_HOST)) return { status: 'queued', title: 'Waiting for a host', headline: `${ws.stateReason}.` };
  if (build.state === 'queued') return { status: 'queued', title: 'Queued', headline: 'Waiting for a worker.' };
  if (build.state === 'running') return { status: 'in_progress', title: `Building: ${build.step ?? 'preparing'}`, headline: `Step: ${build.step ?? 'preparing'}` };
  // build succeeded: the check follows the workspace starting on this commit
  const current = ws.currentBuildId === build.id;
  if (current && ws.state === 'failed') {
    return { status: 'completed', conclusion: 'failure', title: 'Failed while starting', headline: ws.stateReason ?? 'The workspace failed to start.', logTail };
  }
  if (current && (ws.state === 'starting' || ws.state === 'queued' || ws.state === 'building')) {
    return { status: 'in_progress', title: `Starting: ${ws.stateReason ?? 'starting'}`, headline: ws.stateReason ?? 'Starting the workspace.' };
  }
  // issue 13: this commit did not take over (its migrate or start failed), an older one keeps serving
  if (current && ws.state === 'running' && ws.runningSha && ws.runningSha !== build.sha) {
    return { status: 'completed', conclusion: 'failure', title: 'Failed while starting', headline: ws.notice ?? ws.stateReason ?? 'This commit did not start; an older one keeps running.', logTail };
  }
  if (ws.runningSha === build.sha || !current) {
    return { status: 'completed', conclusion: 'success', title: 'Workspace ready', headline: `Workspace is ${ws.state}.` };
  }
  return { status: 'completed', conclusion: 'success', title: 'Built', headline: `Workspace is ${ws.state}.` };
}

/** Last lines of a log, with anything that looks like a secret removed. */
export function tail(text: string, lines = 30, secrets: string[] = []): string {
  const all = redact(text, secrets).replace(/\r/g, '').split('\n');
  while (all.length && all[all.length - 1] === '') all.pop();
  return all.slice(-lines).join('\n').slice(-6000);
}

export const STATE_EMOJI: Record<string, string> = {
  queued: '⏳', unreachable: '📡', building: '🔨', starting: '🚀', running: '🟢', stopped: '⏸️', failed: '❌', deleted: '🗑️',
};
