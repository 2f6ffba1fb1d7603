import { describe, expect, it } from 'vitest';
import { isPoolBranch, mayClaim, planPool, poolBranch, poolCounts, type PoolMemberView } from '../../lib/warm-pool.js';

const A = 'a'.repeat(40);
const B = 'b'.repeat(40);
const m = (id: string, state: PoolMemberView['state'], sha = A): PoolMemberView => ({ id, state, sha });

describe('planPool (refill decisions)', () => {
  it('fills an empty pool to its size', () => {
    expect(planPool(2, A, [])).toEqual({ create: 2, remove: [] });
  });

  it('counts members still filling, so a second run makes none twice', () => {
    expect(planPool(2, A, [m('1', 'starting'), m('2', 'queued')])).toEqual({ create: 0, remove: [] });
    expect(planPool(2, A, [m('1', 'stopped')])).toEqual({ create: 1, remove: [] });
  });

  it('refills what a claim took (a claimed member is no member any more)', () => {
    expect(planPool(1, A, [])).toEqual({ create: 1, remove: [] });
  });

  it('discards members of an older commit of the default branch and fills from the new one', () => {
    expect(planPool(2, B, [m('old1', 'stopped', A), m('old2', 'starting', A), m('new', 'stopped', B)])).toEqual({ create: 1, remove: ['old1', 'old2'] });
  });

  it('drains the pool at warm: 0, and without a successful build of the default branch', () => {
    expect(planPool(0, A, [m('1', 'stopped'), m('2', 'starting')])).toEqual({ create: 0, remove: ['2', '1'] });
    expect(planPool(3, null, [m('1', 'stopped')])).toEqual({ create: 0, remove: ['1'] });
  });

  it('a smaller size removes members still filling first, then failed ones, then the oldest ready', () => {
    const members = [m('ready-old', 'stopped'), m('filling', 'starting'), m('failed', 'failed'), m('ready-new', 'stopped')];
    expect(planPool(3, A, members).remove).toEqual(['filling']);
    expect(planPool(2, A, members).remove).toEqual(['filling', 'failed']);
    expect(planPool(1, A, members).remove).toEqual(['filling', 'failed', 'ready-old']);
  });

  it('keeps a member that failed to fill instead of retrying it forever, until the default branch moves', () => {
    expect(planPool(1, A, [m('f', 'failed')])).toEqual({ create: 0, remove: [] });
    expect(planPool(1, B, [m('f', 'failed', A)])).toEqual({ create: 1, remove: ['f'] });
  });

  it('ignores deleted members and never asks for more than 10', () => {
    expect(planPool(2, A, [m('gone', 'deleted')])).toEqual({ create: 2, remove: [] });
    expect(planPool(50, A, []).create).toBe(10);
  });
});

describe('poolCounts', () => {
  it('says ready, filling and failed', () => {
    expect(poolCounts([{ state: 'stopped' }, { state: 'starting' }, { state: 'queued' }, { state: 'failed' }, { state: 'deleted' }])).toEqual({ size: 4, ready: 1, filling: 2, failed: 1 });
  });
});

describe('mayClaim (claim decisions)', () => {
  const req = { branch: 'feature/x', defaultBranch: 'main', actor: 'push' };
  it('a push of a new branch of the repository itself claims', () => {
    expect(mayClaim(req)).toBe(true);
    expect(mayClaim({ ...req, actor: 'pull_request', forkRepo: null })).toBe(true);
  });

  it('the default branch, forks, commands and pool branches never do', () => {
    expect(mayClaim({ ...req, branch: 'main' })).toBe(false);
    expect(mayClaim({ ...req, forkRepo: 'mallory/x' })).toBe(false);
    expect(mayClaim({ ...req, actor: 'pull_request' })).toBe(false); // not known to be from the repository itself
    expect(mayClaim({ ...req, actor: 'pull_request', forkRepo: 'mallory/x' })).toBe(false);
    expect(mayClaim({ ...req, actor: 'alice' })).toBe(false);
    expect(mayClaim({ ...req, branch: poolBranch() })).toBe(false);
  });

  it('pool branches can never be a git branch (a ref name cannot hold ":")', () => {
    const b = poolBranch();
    expect(isPoolBranch(b)).toBe(true);
    expect(b).toContain(':');
    expect(isPoolBranch('warm-123')).toBe(false);
  });
});
