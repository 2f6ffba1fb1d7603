import { describe, expect, it } from 'vitest';
import { assertTransition, canTransition, sourcesOf } from '../../lib/lifecycle.js';
import { redact } from '../../lib/redact.js';

describe('workspace lifecycle', () => {
  it('allows the documented path and any → failed / deleted', () => {
    expect(canTransition('queued', 'building')).toBe(true);
    expect(canTransition('building', 'starting')).toBe(true);
    expect(canTransition('starting', 'running')).toBe(true);
    expect(canTransition('running', 'stopped')).toBe(true);
    expect(canTransition('stopped', 'starting')).toBe(true);
    for (const s of ['queued', 'building', 'starting', 'running', 'stopped'] as const) {
      expect(canTransition(s, 'failed')).toBe(true);
      expect(canTransition(s, 'deleted')).toBe(true);
    }
  });

  it('refuses to leave deleted or to run without starting', () => {
    expect(canTransition('deleted', 'running')).toBe(false);
    expect(canTransition('stopped', 'running')).toBe(false);
    expect(canTransition('queued', 'running')).toBe(false);
    expect(() => assertTransition('deleted', 'starting')).toThrowError(/cannot go from deleted to starting/);
    expect(sourcesOf('running')).not.toContain('stopped');
  });
});

describe('redact', () => {
  it('removes tokens and known secrets', () => {
    const out = redact('clone http://x-access-token:ghs_abcdefghijklmnopqrstuvwxyz0123@host/x.git with sekrit-value', ['sekrit-value']);
    expect(out).not.toContain('ghs_abcdefghijklmnopqrstuvwxyz0123');
    expect(out).not.toContain('sekrit-value');
    expect(redact('Authorization: Basic eC1hY2Nlc3M=')).toBe('Authorization: Basic [redacted]');
  });
});
