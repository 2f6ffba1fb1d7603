import { describe, expect, it } from 'vitest';
import { checkViewFor } from '../../app/github/presenter.js';
import type { Build, Workspace } from '../../lib/db/client.js';

const OLD = 'a'.repeat(40);
const NEW = 'b'.repeat(40);
const build = (fields: Partial<Build>) => ({ id: 'b2', sha: NEW, state: 'succeeded', step: 'built', error: null, ...fields }) as Build;
const ws = (fields: Partial<Workspace>) => ({ id: 'w', currentBuildId: 'b2', state: 'running', runningSha: NEW, stateReason: null, notice: null, ...fields }) as Workspace;

describe('the check run of a commit (issue 13: a new commit that does not take over)', () => {
  it('fails when the commit failed to build, whatever the workspace still runs', () => {
    const view = checkViewFor(ws({ runningSha: OLD }), build({ state: 'failed', step: 'building service web', error: 'exit 7' }), 'tail');
    expect(view).toMatchObject({ status: 'completed', conclusion: 'failure', title: 'Failed while building service web', headline: 'exit 7' });
  });

  it('fails when its migrate or start failed and the older commit keeps running, with the notice as the headline', () => {
    const notice = `Commit ${NEW.slice(0, 7)} did not start (migrate exited with code 3), so ${OLD.slice(0, 7)} keeps running.`;
    const view = checkViewFor(ws({ runningSha: OLD, notice }), build({}), 'tail');
    expect(view).toMatchObject({ status: 'completed', conclusion: 'failure', title: 'Failed while starting', headline: notice, logTail: 'tail' });
  });

  it('succeeds once the commit runs, and stays in progress while it rolls out', () => {
    expect(checkViewFor(ws({}), build({}), '')).toMatchObject({ conclusion: 'success', title: 'Workspace ready' });
    expect(checkViewFor(ws({ state: 'starting', runningSha: OLD, stateReason: 'migrating (web)' }), build({}), '')).toMatchObject({ status: 'in_progress' });
  });

  it('an older commit that is no longer the current build keeps its success', () => {
    expect(checkViewFor(ws({ currentBuildId: 'b3' }), build({ sha: OLD }), '')).toMatchObject({ conclusion: 'success' });
  });
});
