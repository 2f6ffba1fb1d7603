import { describe, expect, it } from 'vitest';
import { mayCopyBaseDisk, baseDiskSpec } from '../../worker/base-disk.js';
import { hasDataVolumes, snapshotBeforeMigrate, snapshotSpec } from '../../worker/data-snapshot.js';
import { parseCopyOutput } from '../../worker/runtime/disk-copy.js';
import { StepTimer, formatMs, parseSteps, startedFromText } from '../../lib/start-steps.js';
import { parseCommands } from '../../app/commands/parse.js';
import type { WorkspaceRunSpec } from '../../worker/runtime/types.js';

const SHA = 'a'.repeat(40);
const base = { sha: 'b'.repeat(40), withSecrets: false, repositoryId: 1n };
const ws = { repositoryId: 1n, branch: 'feature/x', forkRepo: null, approvedSecretsSha: null };
const input = { base, ws, defaultBranch: 'main', sha: SHA, baseInHistory: true, runtimeCanCopy: true };

describe('mayCopyBaseDisk', () => {
  it('copies for a new branch of the same repository whose history holds the base commit', () => {
    expect(mayCopyBaseDisk(input)).toEqual({ copy: true });
  });

  it.each([
    ['no base disk yet', { base: null }, /no base disk of main is ready/],
    ['another repository', { base: { ...base, repositoryId: 2n } }, /another repository/],
    ['the default branch itself', { ws: { ...ws, branch: 'main' } }, /main prepares the base disk itself/],
    ['a base commit outside the branch history', { baseInHistory: false }, /not in this branch's history/],
    ['a runtime without copies', { runtimeCanCopy: false }, /cannot copy/],
  ])('starts fresh: %s', (_what, change, why) => {
    const decision = mayCopyBaseDisk({ ...input, ...change } as typeof input);
    expect(decision.copy).toBe(false);
    expect(decision.copy === false && decision.why).toMatch(why);
  });

  it("a fork's pull request gets a base disk made with secrets only when its commit was approved with them", () => {
    const fork = { ...ws, forkRepo: 'eve/shop', branch: 'pr/9' };
    expect(mayCopyBaseDisk({ ...input, ws: fork })).toEqual({ copy: true });
    const secret = { ...base, withSecrets: true };
    expect(mayCopyBaseDisk({ ...input, ws: fork, base: secret })).toMatchObject({ copy: false, why: expect.stringContaining('--with-secrets') });
    expect(mayCopyBaseDisk({ ...input, ws: { ...fork, approvedSecretsSha: 'c'.repeat(40) }, base: secret }).copy).toBe(false);
    expect(mayCopyBaseDisk({ ...input, ws: { ...fork, approvedSecretsSha: SHA }, base: secret })).toEqual({ copy: true });
    // a fork whose branch is called like the default branch is still a fork
    expect(mayCopyBaseDisk({ ...input, ws: { ...fork, branch: 'main' } })).toEqual({ copy: true });
  });
});

const spec: WorkspaceRunSpec = {
  workspaceId: 'w1',
  slug: 'feature-x-shop',
  memoryBytes: 1,
  cpus: 1,
  services: [{ name: 'web', image: 'i', env: { A: '1' }, mountsWorkspace: true, data: '/data' }],
};

describe('snapshots and base disk specs', () => {
  it('a snapshot is taken before the migrate of a new commit on a disk that ran an older one, with data to keep', () => {
    const at = { newDisk: false, runningSha: 'old', sha: 'new', hasMigrate: true, hasData: true, canCopy: true };
    expect(snapshotBeforeMigrate(at)).toBe(true);
    expect(snapshotBeforeMigrate({ ...at, newDisk: true })).toBe(false);
    expect(snapshotBeforeMigrate({ ...at, runningSha: null })).toBe(false);
    expect(snapshotBeforeMigrate({ ...at, runningSha: 'new' })).toBe(false);
    expect(snapshotBeforeMigrate({ ...at, hasMigrate: false })).toBe(false);
    expect(snapshotBeforeMigrate({ ...at, hasData: false })).toBe(false);
    expect(snapshotBeforeMigrate({ ...at, canCopy: false })).toBe(false);
  });

  it('names: the snapshot keeps the workspace id (its labels, so deletion takes it); the base disk has an id and a slug no workspace can have', () => {
    expect(snapshotSpec(spec)).toMatchObject({ workspaceId: 'w1', slug: 'feature-x-shop.pre-migrate' });
    const b = baseDiskSpec({ id: 'cm123' }, spec);
    expect(b).toMatchObject({ workspaceId: 'cm123', slug: 'base.cm123' });
    expect(b.slug).toContain('.'); // slugs are [a-z0-9-]: never a workspace's
    b.services[0]!.env.A = '2';
    expect(spec.services[0]!.env.A).toBe('1');
    expect(hasDataVolumes(spec)).toBe(true);
    expect(hasDataVolumes({ ...spec, services: [{ ...spec.services[0]!, data: undefined }] })).toBe(false);
    expect(hasDataVolumes({ ...spec, services: [{ ...spec.services[0]!, data: undefined, volumes: [{ name: 'pg', target: '/var/lib/pg' }] as never }] })).toBe(true);
  });

  it("reads the copy's method and size", () => {
    expect(parseCopyOutput('berth-copy-method=reflink\nberth-copy-bytes=1073741824\n')).toEqual({ method: 'reflink', bytes: 1073741824 });
    expect(parseCopyOutput('cp: warning\nberth-copy-method=copy\n')).toEqual({ method: 'copy', bytes: 0 });
  });
});

describe('start steps', () => {
  it('times each step until the next begins; a step that comes back adds up', () => {
    let now = 0;
    const t = new StepTimer(() => now);
    t.begin('copy');
    now = 1200;
    t.begin('migrate');
    now = 1500;
    t.begin('services');
    now = 1600;
    t.begin('migrate');
    now = 1700;
    t.end();
    expect(t.list()).toEqual([
      { step: 'copy', ms: 1200 },
      { step: 'migrate', ms: 400 },
      { step: 'services', ms: 100 },
    ]);
  });

  it('says where the disk came from and how long the start took', () => {
    const steps = [{ step: 'copy', ms: 1200 }, { step: 'checkout', ms: 300 }, { step: 'migrate', ms: 500 }];
    expect(startedFromText('base-disk', steps)).toBe('Disk: a copy of the base disk (seed skipped: its data came with the copy). Start took 2.0 s: copy 1.2 s · checkout 300 ms · migrate 500 ms');
    expect(startedFromText('fresh', [])).toBe('Disk: fresh (checkout, migrate, seed).');
    expect(startedFromText('warm-pool', steps)).toMatch(/^Disk: .*warm pool.*Start took 2.0 s/);
    expect(startedFromText(null, null)).toBeNull();
    expect(startedFromText(null, [{ step: 'services', ms: 61_000 }])).toBe('Start took 1 min 1 s: services 1 min 1 s');
    expect(parseSteps([{ step: 'x', ms: 'no' }, { step: 'y', ms: 2 }, null])).toEqual([{ step: 'y', ms: 2 }]);
    expect(formatMs(999)).toBe('999 ms');
  });
});

describe('/berth reset', () => {
  it('parses reset and reset --before-migrate', () => {
    expect(parseCommands('/berth reset')).toEqual([{ verb: 'reset' }]);
    expect(parseCommands('/berth reset --before-migrate')).toEqual([{ verb: 'reset', beforeMigrate: true }]);
    expect(parseCommands('> /berth reset')).toEqual([]);
  });
});
