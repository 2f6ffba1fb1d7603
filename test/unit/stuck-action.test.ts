import { describe, expect, it } from 'vitest';
import { stuckAction } from '../../worker/jobs/reconcile.js';

const now = Date.parse('2026-11-22T12:00:00Z');
const ago = (s: number) => new Date(now - s * 1000);
const build = (state: string, createdS: number, startedS?: number, finishedS?: number) => ({
  state,
  createdAt: ago(createdS),
  startedAt: startedS === undefined ? null : ago(startedS),
  finishedAt: finishedS === undefined ? null : ago(finishedS),
});

/** What the reconciler does with a workspace no job is working on. */
describe('stuckAction', () => {
  it('builds a push that never got its job (Redis was away), after a short grace', () => {
    expect(stuckAction({ state: 'queued' }, ago(3), build('queued', 3), now)).toBe('wait');
    expect(stuckAction({ state: 'queued' }, ago(30), build('queued', 30), now)).toBe('requeue-build');
  });
  it('builds again a build whose job was lost while it ran', () => {
    expect(stuckAction({ state: 'building' }, ago(60), build('running', 70, 60), now)).toBe('requeue-build');
    expect(stuckAction({ state: 'building' }, ago(5), build('running', 6, 5), now)).toBe('wait');
  });
  it('gives up on builds older than an hour: push again', () => {
    expect(stuckAction({ state: 'queued' }, ago(4000), build('queued', 4000), now)).toBe('fail');
  });
  it('starts a finished build whose start was lost', () => {
    expect(stuckAction({ state: 'building' }, ago(60), build('succeeded', 90, 80, 60), now)).toBe('start');
  });
  it('fails a start with no job after two minutes in the state, however often its preview is asked for', () => {
    expect(stuckAction({ state: 'starting' }, ago(60), build('succeeded', 300, 290, 280), now)).toBe('wait');
    expect(stuckAction({ state: 'starting' }, ago(180), build('succeeded', 300, 290, 280), now)).toBe('fail');
  });
  it('leaves a queued workspace without a build in flight alone (a fork waiting for approval)', () => {
    expect(stuckAction({ state: 'queued' }, ago(3600), null, now)).toBe('wait');
  });
});
