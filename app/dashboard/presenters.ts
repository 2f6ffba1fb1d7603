import { idleDeadline } from '../../lib/idle.js';
import type { BerthConfig } from '../../lib/config.js';
import { serviceLabels, serviceUrl } from '../../lib/preview-domain.js';
import type { RepoAccess } from '../auth/types.js';

/**
 * Pure functions that turn database rows into what the dashboard templates show. No I/O and
 * no clock: `now` is passed in, so every decision here is unit-testable.
 */

export type State = 'queued' | 'building' | 'starting' | 'running' | 'stopped' | 'failed' | 'deleted';
export const STATES: readonly State[] = ['queued', 'building', 'starting', 'running', 'stopped', 'failed', 'deleted'];
/** States in which something is happening by itself: pages showing them reload themselves. */
const TRANSITIONAL: readonly State[] = ['queued', 'building', 'starting'];

/** `reset` (issue 17) is on the workspace page only, behind its confirmation page */
export type ActionName = 'refresh' | 'stop' | 'start' | 'delete' | 'reset';

export interface RepoRow {
  id: bigint;
  fullName: string;
  htmlUrl: string | null;
}

export interface WorkspaceRowInput {
  id: string;
  branch: string;
  slug: string;
  state: State;
  stateReason: string | null;
  notice?: string | null;
  headSha: string;
  runningSha: string | null;
  prNumber: number | null;
  forkRepo: string | null;
  lastActivityAt: Date;
  idleTimeoutSec: number;
  updatedAt: Date;
  repository: RepoRow;
}

export interface Links {
  preview: string;
  ide: string;
  details: string;
}

export interface WorkspaceRowView {
  id: string;
  branch: string;
  state: State;
  stateReason: string | null;
  notice: string | null;
  /** what a queued job is about to do, e.g. "stopping" */
  pending: string | null;
  prNumber: number | null;
  prUrl: string | null;
  branchUrl: string | null;
  commit: { sha: string; short: string; url: string | null };
  /** the branch has a newer commit than the one running */
  behind: { short: string } | null;
  lastActivity: { text: string; iso: string };
  idleStop: { text: string; iso: string } | null;
  links: { details: string; preview: string | null; ide: string | null };
  /** actions the signed-in user may take now (empty for readers) */
  actions: ActionName[];
}

export interface RepoGroupView {
  fullName: string;
  htmlUrl: string | null;
  access: RepoAccess;
  workspaces: WorkspaceRowView[];
}

const shortSha = (sha: string) => sha.slice(0, 7);

/** "just now", "5 min ago", "in 3 h", "2 days ago". */
export function relativeTime(date: Date, now: Date): string {
  const diff = date.getTime() - now.getTime();
  const abs = Math.abs(diff);
  const future = diff > 0;
  if (abs < 45_000) return future ? 'in less than a minute' : 'just now';
  const units: Array<[number, string]> = [
    [86_400_000, 'day'],
    [3_600_000, 'h'],
    [60_000, 'min'],
  ];
  for (const [ms, unit] of units) {
    if (abs >= ms || unit === 'min') {
      const n = Math.max(1, Math.round(abs / ms));
      const label = unit === 'day' ? (n === 1 ? 'day' : 'days') : unit;
      return future ? `in ${n} ${label}` : `${n} ${label} ago`;
    }
  }
  return date.toISOString();
}

/**
 * When the idle timer will stop a running workspace: its last preview or IDE activity plus its
 * idle timeout. Null when nothing will stop it (not running).
 */
export function idleStop(ws: Pick<WorkspaceRowInput, 'state' | 'lastActivityAt' | 'idleTimeoutSec'>, now: Date): { text: string; iso: string; at: Date } | null {
  const at = idleDeadline(ws);
  if (!at) return null;
  const text = at.getTime() <= now.getTime() ? 'any moment now' : relativeTime(at, now);
  return { text, iso: at.toISOString(), at };
}

/**
 * The actions of seed 000's menu that make sense in a state. Refresh and Delete always (but on
 * deleted workspaces); Stop while something runs; Start when nothing does.
 */
export function actionsFor(state: State, access: RepoAccess): ActionName[] {
  if (access !== 'write' || state === 'deleted') return [];
  const actions: ActionName[] = ['refresh'];
  if (state === 'running' || state === 'starting') actions.push('stop');
  if (state === 'stopped' || state === 'failed') actions.push('start');
  actions.push('delete');
  return actions;
}

const PENDING_WORDS: Record<string, string> = { stop: 'stopping', start: 'starting', delete: 'deleting', status: 'checking' };

/** Words for jobs queued for a workspace, e.g. ['stop'] → "stopping". */
export function pendingText(jobNames: readonly string[] | undefined): string | null {
  const words = [...new Set((jobNames ?? []).map((n) => PENDING_WORDS[n]).filter(Boolean))];
  return words.length ? `${words.join(', ')}…` : null;
}

export function workspaceRow(ws: WorkspaceRowInput, access: RepoAccess, links: Links, now: Date, pendingJobs?: readonly string[]): WorkspaceRowView {
  const repoUrl = ws.repository.htmlUrl;
  const sha = ws.runningSha ?? ws.headSha;
  const alive = ws.state !== 'deleted' && (ws.state === 'running' || ws.runningSha !== null);
  const stop = idleStop(ws, now);
  return {
    id: ws.id,
    branch: ws.branch,
    state: ws.state,
    stateReason: ws.stateReason,
    notice: ws.notice ?? null,
    pending: pendingText(pendingJobs),
    prNumber: ws.prNumber,
    prUrl: repoUrl && ws.prNumber ? `${repoUrl}/pull/${ws.prNumber}` : null,
    branchUrl: repoUrl && !ws.forkRepo ? `${repoUrl}/tree/${encodeURIComponent(ws.branch).replace(/%2F/g, '/')}` : null,
    commit: { sha, short: shortSha(sha), url: repoUrl ? `${repoUrl}/commit/${sha}` : null },
    behind: ws.runningSha && ws.runningSha !== ws.headSha ? { short: shortSha(ws.headSha) } : null,
    lastActivity: { text: relativeTime(ws.lastActivityAt, now), iso: ws.lastActivityAt.toISOString() },
    idleStop: stop && { text: stop.text, iso: stop.iso },
    links: {
      details: links.details,
      // The gateway wakes a stopped workspace on its preview URL, so the link stays useful.
      preview: alive ? links.preview : null,
      // The IDE needs write access (issue 5): readers would only meet a 403.
      ide: alive && access === 'write' ? links.ide : null,
    },
    actions: actionsFor(ws.state, access),
  };
}

/** Rows grouped by repository, repositories by name, rows newest first as given. */
export function groupByRepository(rows: Array<{ repo: RepoRow; access: RepoAccess; row: WorkspaceRowView }>): RepoGroupView[] {
  const groups = new Map<string, RepoGroupView>();
  for (const { repo, access, row } of rows) {
    let g = groups.get(repo.fullName);
    if (!g) groups.set(repo.fullName, (g = { fullName: repo.fullName, htmlUrl: repo.htmlUrl, access, workspaces: [] }));
    g.workspaces.push(row);
  }
  return [...groups.values()].sort((a, b) => a.fullName.localeCompare(b.fullName));
}

export interface ListFilters {
  repo: string | null;
  /** a state, 'active' (everything but deleted, the default) or 'all' */
  state: State | 'active' | 'all';
  q: string;
}

/** Reads the list's query parameters; unknown values fall back to the defaults. */
export function parseFilters(params: URLSearchParams): ListFilters {
  const repo = params.get('repo')?.trim() || null;
  const rawState = params.get('state') ?? 'active';
  const state = rawState === 'all' || rawState === 'active' || (STATES as readonly string[]).includes(rawState) ? (rawState as ListFilters['state']) : 'active';
  const q = (params.get('q') ?? '').trim().slice(0, 200);
  return { repo, state, q };
}

/** The query string of the list with these filters (defaults left out), for links and redirects. */
export function filtersQuery(f: ListFilters): string {
  const p = new URLSearchParams();
  if (f.repo) p.set('repo', f.repo);
  if (f.state !== 'active') p.set('state', f.state);
  if (f.q) p.set('q', f.q);
  const s = p.toString();
  return s ? `?${s}` : '';
}

/** True when a page showing these states should reload itself to show progress. */
export function shouldAutoRefresh(states: readonly State[], anyPending: boolean): boolean {
  return anyPending || states.some((s) => TRANSITIONAL.includes(s));
}

// --- workspace page ---------------------------------------------------------------------

export interface EventInput {
  id: bigint;
  fromState: State | null;
  toState: State;
  reason: string;
  actor: string;
  createdAt: Date;
}

export interface EventView {
  from: State | null;
  to: State;
  reason: string;
  actor: string;
  /** who or what caused it, in words: push, command, idle timer, reconciler, ... */
  cause: string;
  time: { text: string; iso: string };
}

/**
 * Who triggered a change, in words. Actors are recorded as `push`, `worker`, `gateway`,
 * `idle`, `reconciler`, or `@login` for people (slash commands, check-run buttons, dashboard).
 */
export function causeOf(actor: string, reason: string): string {
  if (actor.startsWith('@')) return /dashboard/i.test(reason) ? `${actor} (dashboard)` : `${actor} (command)`;
  const words: Record<string, string> = {
    push: 'push',
    pull_request: 'pull request',
    worker: 'Berth',
    gateway: 'request to its URL',
    ide: 'request to its IDE',
    idle: 'idle timer',
    'idle-timer': 'idle timer',
    reaper: 'idle timer',
    reconciler: 'reconciler',
    limits: 'workspace limit',
    retention: 'retention',
  };
  return words[actor] ?? actor;
}

export function eventRow(e: EventInput, now: Date): EventView {
  return {
    from: e.fromState,
    to: e.toState,
    reason: e.reason,
    actor: e.actor,
    cause: causeOf(e.actor, e.reason),
    time: { text: relativeTime(e.createdAt, now), iso: e.createdAt.toISOString() },
  };
}

export interface BuildInput {
  id: string;
  sha: string;
  state: 'queued' | 'running' | 'succeeded' | 'failed' | 'canceled';
  step: string | null;
  error: string | null;
  trigger: string;
  createdAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
}

export interface BuildView {
  id: string;
  short: string;
  state: BuildInput['state'];
  step: string | null;
  error: string | null;
  trigger: string;
  created: { text: string; iso: string };
  duration: string | null;
  logUrl: string;
  current: boolean;
}

/** "42 s", "3 min 5 s", "1 h 2 min". */
export function formatDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return s % 60 ? `${m} min ${s % 60} s` : `${m} min`;
  const h = Math.floor(m / 60);
  return m % 60 ? `${h} h ${m % 60} min` : `${h} h`;
}

export function buildRow(b: BuildInput, currentBuildId: string | null, now: Date, berthUrl: string): BuildView {
  const end = b.finishedAt ?? (b.startedAt ? now : null);
  return {
    id: b.id,
    short: shortSha(b.sha),
    state: b.state,
    step: b.step,
    error: b.error,
    trigger: b.trigger,
    created: { text: relativeTime(b.createdAt, now), iso: b.createdAt.toISOString() },
    duration: b.startedAt && end ? formatDuration(end.getTime() - b.startedAt.getTime()) : null,
    logUrl: `${berthUrl}/builds/${b.id}/log`,
    current: b.id === currentBuildId,
  };
}

export interface ServiceSpecInput {
  name: string;
  port?: number;
  image?: string;
  build?: { context: string; dockerfile: string };
  command?: string;
}

export interface ContainerInput {
  name: string;
  service: string | null;
  role: string | null;
  state: string;
  status: string;
}

export interface ServiceView {
  name: string;
  port: number | null;
  source: string;
  preview: boolean;
  container: { name: string; state: string; status: string } | null;
}

/**
 * Services of the workspace's configuration next to their containers. `containers` null means
 * Docker could not be asked: the page then says so and shows what the database knows.
 * Containers no service claims (left by an older configuration) are listed too.
 */
export function serviceRows(
  services: readonly ServiceSpecInput[],
  previewService: string | null,
  containers: readonly ContainerInput[] | null,
): ServiceView[] {
  const longRunning = (containers ?? []).filter((c) => c.role !== 'task');
  const rows: ServiceView[] = services.map((s) => {
    const c = longRunning.find((x) => x.service === s.name && x.role !== 'ide');
    return {
      name: s.name,
      port: s.port ?? null,
      source: s.image ? `image ${s.image}` : s.build ? `built from ${s.build.context === '.' ? 'the repository' : s.build.context}${s.build.dockerfile !== 'Dockerfile' ? ` (${s.build.dockerfile})` : ''}` : '',
      preview: s.name === previewService,
      container: c ? { name: c.name, state: c.state, status: c.status } : null,
    };
  });
  for (const c of longRunning) {
    if (c.role !== 'ide' && services.some((s) => s.name === c.service)) continue;
    const container = { name: c.name, state: c.state, status: c.status };
    // the browser IDE runs beside the services on the same disk (issue 5)
    if (c.role === 'ide') rows.push({ name: 'IDE', port: null, source: 'browser IDE on the workspace disk', preview: false, container });
    else rows.push({ name: c.service ?? c.name, port: null, source: 'not in the current configuration', preview: false, container });
  }
  return rows;
}

/**
 * The public URL of each service with a port (issue 16): the preview's for the previewed one,
 * its own host (lib/preview-domain.ts) for the others, as BERTH_URL_<SERVICE> gives them.
 */
export function serviceUrls(
  services: readonly { name: string; port?: number | undefined }[],
  previewService: string | null,
  previewUrl: string,
  config: Pick<BerthConfig, 'berthUrl' | 'BERTH_PREVIEW_DOMAIN'>,
  ws: { id: string; slug: string },
): Record<string, string> {
  const withPort = services.filter((s) => s.port);
  const labels = serviceLabels(withPort.map((s) => s.name));
  return Object.fromEntries(withPort.map((s) => [s.name, s.name === previewService ? previewUrl : serviceUrl(config, ws, labels.get(s.name)!)]));
}

// --- build log ----------------------------------------------------------------------------

/** Terminal build states: nothing more will be written by the build itself. */
export function buildFinished(state: BuildInput['state']): boolean {
  return state === 'succeeded' || state === 'failed' || state === 'canceled';
}

/**
 * Whether a build's log can still grow: while it builds, and afterwards while the workspace
 * starts on it (the start job appends migrate, seed and health output to the same log).
 */
export function logIsLive(build: { id: string; state: BuildInput['state'] }, ws: { state: State; currentBuildId: string | null } | null): boolean {
  if (!buildFinished(build.state)) return true;
  return Boolean(ws && ws.currentBuildId === build.id && TRANSITIONAL.includes(ws.state));
}

/** Only local paths are followed after a form post, never another host (open redirect). */
export function safeReturnPath(value: string | undefined | null, fallback: string): string {
  if (!value || !value.startsWith('/') || value.startsWith('//') || value.includes('\\') || /[\r\n]/.test(value)) return fallback;
  return value;
}
