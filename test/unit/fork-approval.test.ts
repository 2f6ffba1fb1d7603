import { describe, expect, it } from 'vitest';
import { decideApproval, refusalText } from '../../app/commands/approval.js';
import { parseCommands } from '../../app/commands/parse.js';
import { UNKNOWN_FORK, prWorkspaceKey } from '../../app/webhooks/pr-key.js';
import { previewIsPrivate } from '../../lib/repo-config.js';
import { publicSummary } from '../../lib/redact.js';

const A = 'a'.repeat(40);
const B = 'b'.repeat(40);
const t = (s: string) => new Date(`2026-12-02T04:00:${s}Z`);

describe('/berth approve binds to a commit', () => {
  const heads = [{ sha: A, seenAt: t('10') }];

  it('approves the head of the time the comment was written while it is still the head', () => {
    expect(decideApproval({ heads, commentAt: t('20'), currentHead: A })).toEqual({ ok: true, sha: A });
  });

  it('refuses when the fork pushed after the comment, reported or not', () => {
    const reported = [...heads, { sha: B, seenAt: t('30') }];
    expect(decideApproval({ heads: reported, commentAt: t('20'), currentHead: B })).toEqual({ ok: false, why: 'moved', seen: A, now: B });
    // the synchronize webhook has not arrived yet: GitHub's current head still gives it away
    expect(decideApproval({ heads, commentAt: t('20'), currentHead: B })).toEqual({ ok: false, why: 'moved', seen: A, now: B });
    // pushed away and back after the comment: something else was the head in between
    expect(decideApproval({ heads: [...reported, { sha: A, seenAt: t('40') }], commentAt: t('20'), currentHead: A })).toMatchObject({ ok: false, why: 'moved' });
  });

  it('treats a head reported in the same second as the comment as moved (GitHub times have seconds only)', () => {
    expect(decideApproval({ heads: [...heads, { sha: B, seenAt: t('20') }], commentAt: t('20'), currentHead: B })).toMatchObject({ ok: false, why: 'moved', seen: A });
  });

  it('asks for the commit when it cannot tell what the comment saw', () => {
    expect(decideApproval({ heads: [], commentAt: t('20'), currentHead: A })).toEqual({ ok: false, why: 'unknown', now: A });
    expect(decideApproval({ heads: [{ sha: A, seenAt: t('25') }], commentAt: t('20'), currentHead: A })).toMatchObject({ why: 'unknown' });
    expect(decideApproval({ heads, currentHead: A })).toMatchObject({ why: 'unknown' });
  });

  it('takes an explicit sha (7 to 40 hex digits) only when it is the head', () => {
    expect(decideApproval({ heads: [], currentHead: B, asked: 'BBBBBBB' })).toEqual({ ok: true, sha: B });
    expect(decideApproval({ heads, commentAt: t('20'), currentHead: B, asked: A.slice(0, 12) })).toEqual({ ok: false, why: 'not-head', asked: A.slice(0, 12), now: B });
    expect(decideApproval({ heads: [], currentHead: B, asked: 'bbbbbb' })).toMatchObject({ why: 'bad-sha' });
    expect(decideApproval({ heads: [], currentHead: B, asked: 'please' })).toMatchObject({ why: 'bad-sha' });
  });

  it('says which commit to approve', () => {
    const text = refusalText({ ok: false, why: 'moved', seen: A, now: B }, 'the fork `eve/shop`');
    expect(text).toContain('`aaaaaaa`');
    expect(text).toContain('`/berth approve bbbbbbb`');
    expect(text).toContain('Nothing was approved');
    expect(refusalText({ ok: false, why: 'moved', seen: A, now: A }, 'the fork `eve/shop`')).toContain('came back to `aaaaaaa`');
  });

  it('parses the commit after /berth approve', () => {
    expect(parseCommands('/berth approve 1a2b3c4d')).toEqual([{ verb: 'approve', sha: '1a2b3c4d' }]);
    expect(parseCommands('/berth approve')).toEqual([{ verb: 'approve' }]);
    expect(parseCommands('/berth stop now')).toEqual([{ verb: 'stop' }]);
  });
});

describe('the workspace of a pull request', () => {
  const pr = (head: { id: number; full_name: string } | null, ref = 'main') => ({ number: 12, head: { ref, repo: head } });

  it('is the branch when the head is the base repository, by id', () => {
    expect(prWorkspaceKey(pr({ id: 7, full_name: 'acme/shop' }, 'feature'), 7n)).toEqual({ branch: 'feature', forkRepo: null, forkBranch: null });
  });

  it('is pr/<n> for a fork, and for a head repository GitHub no longer shows', () => {
    expect(prWorkspaceKey(pr({ id: 8, full_name: 'eve/shop' }), 7n)).toEqual({ branch: 'pr/12', forkRepo: 'eve/shop', forkBranch: 'main' });
    expect(prWorkspaceKey(pr(null), 7n)).toEqual({ branch: 'pr/12', forkRepo: UNKNOWN_FORK, forkBranch: 'main' });
    // a fork whose name looks like the base is still a fork
    expect(prWorkspaceKey(pr({ id: 9, full_name: 'acme/shop' }), 7n).branch).toBe('pr/12');
  });
});

describe('what the public sees', () => {
  it('previews of private repositories are private unless berth.yml says public', () => {
    expect(previewIsPrivate({ visibility: 'default' }, true)).toBe(true);
    expect(previewIsPrivate({ visibility: 'default' }, false)).toBe(false);
    expect(previewIsPrivate({ visibility: 'public' }, true)).toBe(false);
    expect(previewIsPrivate({ visibility: 'private' }, false)).toBe(true);
  });

  it('a failure reason on a public page is its first line, redacted', () => {
    const token = `ghp_${'x'.repeat(36)}`;
    expect(publicSummary(`migrate failed with ${token}\nline with a password=hunter2`)).toBe('migrate failed with [redacted]');
    expect(publicSummary(null)).toBe('');
  });
});
