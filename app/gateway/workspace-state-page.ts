import type { ServerResponse } from 'node:http';
import type { AppDeps } from '../deps.js';
import { sendPage } from '../http.js';
import { publicSummary } from '../../lib/redact.js';

export interface StatePageWorkspace {
  id: string;
  slug: string;
  branch: string;
  state: string;
  stateReason: string | null;
}

/**
 * What a workspace host shows while its app (or IDE) cannot answer: the failure, or a page
 * that refreshes itself until the workspace runs. A stopped workspace is woken: every
 * request asks, the deduplicated job starts it once.
 */
export async function showWorkspaceState(
  deps: AppDeps,
  res: ServerResponse,
  ws: StatePageWorkspace,
  repo: string,
  opts: { actor: string; wakeReason: string; runningHeading: string; detail: string },
): Promise<void> {
  const base = { workspace: ws, repo, berthUrl: deps.config.berthUrl };
  if (ws.state === 'failed') {
    // anyone may see a public preview's host: the reason without its log lines, redacted
    const workspace = { ...ws, stateReason: publicSummary(ws.stateReason) };
    sendPage(res, 502, 'pages/failed.njk', { ...base, workspace, detailsUrl: `${deps.config.berthUrl}/workspaces/${ws.id}` });
    return;
  }
  if (ws.state === 'deleted') {
    sendPage(res, 404, 'pages/not-found.njk', { ...base, message: `The workspace “${ws.slug}” was deleted.` });
    return;
  }
  await wakeIfStopped(deps, ws, opts.actor, opts.wakeReason);
  const headings: Record<string, string> = { queued: 'Waiting to build', building: 'Building', starting: 'Starting', stopped: 'Waking up', running: opts.runningHeading };
  const detail = ws.state === 'stopped' ? 'It was stopped; Berth is starting it again.' : opts.detail;
  sendPage(res, 503, 'pages/waiting.njk', { ...base, heading: headings[ws.state] ?? 'Please wait', detail, refresh: 2 }, { 'retry-after': '2' });
}

/** Starts a stopped workspace for a request to one of its hosts: every request asks, one start runs. */
export async function wakeIfStopped(deps: AppDeps, ws: Pick<StatePageWorkspace, 'id' | 'state'>, actor: string, reason: string): Promise<void> {
  if (ws.state !== 'stopped') return;
  await deps.queues.enqueueWorkspace('start', { workspaceId: ws.id, actor, reason, onlyIf: ['stopped'] }, { deduplication: { id: `wake:${ws.id}` } });
}
