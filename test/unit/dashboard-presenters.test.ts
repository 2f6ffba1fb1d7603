import { describe, expect, it } from 'vitest';
import {
  actionsFor,
  causeOf,
  filtersQuery,
  formatDuration,
  idleStop,
  logIsLive,
  parseFilters,
  pendingText,
  relativeTime,
  safeReturnPath,
  serviceRows,
  shouldAutoRefresh,
  workspaceRow,
  type WorkspaceRowInput,
} from '../../app/dashboard/presenters.js';

const now = new Date('2026-11-22T12:00:00Z');
const links = { preview: 'http://main-shop.localhost:3000/', ide: 'http://localhost:3000/workspaces/w1/ide', details: 'http://localhost:3000/workspaces/w1' };
const ws = (over: Partial<WorkspaceRowInput> = {}): WorkspaceRowInput => ({
  id: 'w1',
  branch: 'feature/x',
  slug: 'feature-x-shop',
  state: 'running',
  stateReason: null,
  headSha: 'b'.repeat(40),
  runningSha: 'a'.repeat(40),
  prNumber: 12,
  forkRepo: null,
  lastActivityAt: new Date(now.getTime() - 5 * 60_000),
  idleTimeoutSec: 1800,
  updatedAt: now,
  repository: { id: 1n, fullName: 'acme/shop', htmlUrl: 'https://github.com/acme/shop' },
  ...over,
});

describe('dashboard presenters', () => {
  it('words times relative to now', () => {
    expect(relativeTime(new Date(now.getTime() - 10_000), now)).toBe('just now');
    expect(relativeTime(new Date(now.getTime() - 5 * 60_000), now)).toBe('5 min ago');
    expect(relativeTime(new Date(now.getTime() + 25 * 60_000), now)).toBe('in 25 min');
    expect(relativeTime(new Date(now.getTime() - 3 * 3_600_000), now)).toBe('3 h ago');
    expect(relativeTime(new Date(now.getTime() - 86_400_000), now)).toBe('1 day ago');
    expect(formatDuration(42_000)).toBe('42 s');
    expect(formatDuration(185_000)).toBe('3 min 5 s');
    expect(formatDuration(3_720_000)).toBe('1 h 2 min');
  });

  it('says when the idle timer stops a running workspace, and nothing otherwise', () => {
    expect(idleStop(ws(), now)?.text).toBe('in 25 min');
    expect(idleStop(ws({ lastActivityAt: new Date(now.getTime() - 3_600_000) }), now)?.text).toBe('any moment now');
    expect(idleStop(ws({ state: 'stopped' }), now)).toBeNull();
  });

  it('offers the actions that fit the state, and none to readers', () => {
    expect(actionsFor('running', 'write')).toEqual(['refresh', 'stop', 'delete']);
    expect(actionsFor('stopped', 'write')).toEqual(['refresh', 'start', 'delete']);
    expect(actionsFor('failed', 'write')).toEqual(['refresh', 'start', 'delete']);
    expect(actionsFor('building', 'write')).toEqual(['refresh', 'delete']);
    expect(actionsFor('deleted', 'write')).toEqual([]);
    expect(actionsFor('running', 'read')).toEqual([]);
  });

  it('builds a row: links, commit behind the branch, IDE only for writers', () => {
    const row = workspaceRow(ws(), 'write', links, now, ['stop']);
    expect(row.prUrl).toBe('https://github.com/acme/shop/pull/12');
    expect(row.branchUrl).toBe('https://github.com/acme/shop/tree/feature/x');
    expect(row.commit.short).toBe('aaaaaaa');
    expect(row.behind).toEqual({ short: 'bbbbbbb' });
    expect(row.links.ide).toBe(links.ide);
    expect(row.pending).toBe('stopping…');
    expect(workspaceRow(ws(), 'read', links, now).links.ide).toBeNull();
    expect(workspaceRow(ws(), 'read', links, now).links.preview).toBe(links.preview);
    // never ran: nothing to open yet
    const fresh = workspaceRow(ws({ state: 'building', runningSha: null }), 'write', links, now);
    expect(fresh.links.preview).toBeNull();
    expect(fresh.behind).toBeNull();
    expect(fresh.commit.short).toBe('bbbbbbb');
  });

  it('reads filters leniently and writes them back without defaults', () => {
    const f = parseFilters(new URLSearchParams('repo=acme%2Fshop&state=bogus&q=%20login%20'));
    expect(f).toEqual({ repo: 'acme/shop', state: 'active', q: 'login' });
    expect(filtersQuery(f)).toBe('?repo=acme%2Fshop&q=login');
    expect(filtersQuery(parseFilters(new URLSearchParams('state=stopped')))).toBe('?state=stopped');
    expect(filtersQuery(parseFilters(new URLSearchParams('')))).toBe('');
  });

  it('names who caused a change', () => {
    expect(causeOf('push', 'push of abc by x')).toBe('push');
    expect(causeOf('@alice', 'stopped by @alice')).toBe('@alice (command)');
    expect(causeOf('@alice', 'stopped by @alice from the dashboard')).toBe('@alice (dashboard)');
    expect(causeOf('idle', 'idle for 30 min')).toBe('idle timer');
    expect(causeOf('reconciler', 'its containers are gone')).toBe('reconciler');
    expect(causeOf('gateway', 'woken')).toBe('request to its URL');
  });

  it('puts containers next to services, and says when Docker is unknown', () => {
    const services = [{ name: 'web', port: 3000, build: { context: '.', dockerfile: 'Dockerfile' } }, { name: 'db', image: 'postgres:16' }];
    const rows = serviceRows(services, 'web', [
      { name: 'c-web', service: 'web', role: 'service', state: 'running', status: 'Up 1 minute' },
      { name: 'c-seed', service: 'web', role: 'task', state: 'exited', status: 'Exited (0)' },
      { name: 'c-old', service: 'worker', role: 'service', state: 'exited', status: 'Exited (1)' },
      { name: 'c-ide', service: 'ide', role: 'ide', state: 'running', status: 'Up 1 minute' },
    ]);
    expect(rows.map((r) => [r.name, r.container?.name ?? null, r.preview])).toEqual([
      ['web', 'c-web', true],
      ['db', null, false],
      ['worker', 'c-old', false],
      ['IDE', 'c-ide', false],
    ]);
    expect(rows[0]!.source).toBe('built from the repository');
    expect(rows[1]!.source).toBe('image postgres:16');
    expect(serviceRows(services, 'web', null).every((r) => r.container === null)).toBe(true);
  });

  it('keeps a log live while the build runs and while the workspace starts on it', () => {
    expect(logIsLive({ id: 'b', state: 'running' }, null)).toBe(true);
    expect(logIsLive({ id: 'b', state: 'succeeded' }, { state: 'starting', currentBuildId: 'b' })).toBe(true);
    expect(logIsLive({ id: 'b', state: 'succeeded' }, { state: 'running', currentBuildId: 'b' })).toBe(false);
    expect(logIsLive({ id: 'b', state: 'succeeded' }, { state: 'starting', currentBuildId: 'other' })).toBe(false);
  });

  it('follows only local paths after a form post', () => {
    expect(safeReturnPath('/?state=running', '/')).toBe('/?state=running');
    expect(safeReturnPath('//evil.example/', '/')).toBe('/');
    expect(safeReturnPath('https://evil.example/', '/')).toBe('/');
    expect(safeReturnPath('/\\evil.example', '/')).toBe('/');
    expect(safeReturnPath(undefined, '/x')).toBe('/x');
  });

  it('reloads pages only while something is in progress', () => {
    expect(shouldAutoRefresh(['running', 'stopped'], false)).toBe(false);
    expect(shouldAutoRefresh(['running', 'building'], false)).toBe(true);
    expect(shouldAutoRefresh(['running'], true)).toBe(true);
    expect(pendingText(['stop', 'stop', 'status'])).toBe('stopping, checking…');
    expect(pendingText([])).toBeNull();
  });
});
