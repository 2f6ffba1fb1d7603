import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { idleDeadline, idleStopDue, idleStopJobId, idleStopReason } from '../../lib/idle.js';
import { isBrowserNavigation } from '../../app/gateway/gateway.js';

const at = (iso: string) => new Date(iso);

describe('the idle timer (lib/idle.ts)', () => {
  const ws = { state: 'running', lastActivityAt: at('2026-01-01T10:00:00Z'), idleTimeoutSec: 15 };

  it('is due at the last activity plus the timeout, not a moment before', () => {
    expect(idleDeadline(ws)).toEqual(at('2026-01-01T10:00:15Z'));
    expect(idleStopDue(ws, at('2026-01-01T10:00:14.999Z'))).toBe(false);
    expect(idleStopDue(ws, at('2026-01-01T10:00:15Z'))).toBe(true);
  });

  it('has no deadline unless running', () => {
    for (const state of ['stopped', 'starting', 'building', 'queued', 'failed', 'deleted']) {
      expect(idleDeadline({ ...ws, state })).toBeNull();
      expect(idleStopDue({ ...ws, state }, at('2030-01-01T00:00:00Z'))).toBe(false);
    }
  });

  it('names one stop per recorded activity, and says why in the units of the timeout', () => {
    expect(idleStopJobId('w1', ws.lastActivityAt)).toBe(`idle-stop:w1:${ws.lastActivityAt.getTime()}`);
    expect(idleStopJobId('w1', at('2026-01-01T10:00:01Z'))).not.toBe(idleStopJobId('w1', ws.lastActivityAt));
    expect(idleStopReason(15)).toBe('idle for 15 s');
    expect(idleStopReason(1800)).toBe('idle for 30 min');
    expect(idleStopReason(7200)).toBe('idle for 2 h');
  });
});

describe('which held requests get the waiting page', () => {
  const req = (headers: Record<string, string>, method = 'GET') => ({ method, headers }) as unknown as IncomingMessage;

  it('a browser navigation does; curl, fetch and probes do not', () => {
    expect(isBrowserNavigation(req({ 'sec-fetch-mode': 'navigate', accept: 'text/html' }))).toBe(true);
    expect(isBrowserNavigation(req({ accept: 'text/html,application/xhtml+xml' }))).toBe(true); // an older browser
    expect(isBrowserNavigation(req({ accept: '*/*', 'user-agent': 'curl/8.5.0' }))).toBe(false);
    expect(isBrowserNavigation(req({ 'sec-fetch-mode': 'cors', accept: 'text/html' }))).toBe(false); // a page's fetch
    expect(isBrowserNavigation(req({}))).toBe(false);
    expect(isBrowserNavigation(req({ accept: 'text/html' }, 'POST'))).toBe(false);
  });
});
