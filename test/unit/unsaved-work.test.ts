import { describe, expect, it } from 'vitest';
import { describeUnsavedWork, parseUnsavedWorkOutput } from '../../worker/source/unsaved-work.js';

describe('unsaved work on a workspace disk', () => {
  it('reads changed, new and renamed files, unpushed commits and stashes', () => {
    const out = ['@@status', ' M app.js', '?? notes.txt', 'R  old.js -> new.js', '@@unpushed', '2', '@@stashes', '1', '@@end', ''].join('\n');
    const work = parseUnsavedWorkOutput(out);
    expect(work).toEqual({ files: ['app.js', 'notes.txt', 'new.js'], fileCount: 3, unpushedCommits: 2, stashes: 1 });
    expect(describeUnsavedWork(work as never)).toBe('3 changed or new files (app.js, notes.txt, new.js), 2 unpushed commits, 1 stash');
  });

  it('a clean checkout has nothing to keep', () => {
    expect(parseUnsavedWorkOutput('@@status\n@@unpushed\n0\n@@stashes\n0\n@@end\n')).toEqual({ files: [], fileCount: 0, unpushedCommits: 0, stashes: 0 });
  });

  it('lists five files and says there are more', () => {
    const files = Array.from({ length: 7 }, (_, i) => `?? f${i}.txt`);
    const work = parseUnsavedWorkOutput(['@@status', ...files, '@@unpushed', '0', '@@stashes', '0', '@@end'].join('\n'));
    expect(describeUnsavedWork(work as never)).toBe('7 changed or new files (f0.txt, f1.txt, f2.txt, f3.txt, f4.txt, …)');
  });

  it('output cut short (the script failed half-way) is not read as "nothing to keep"', () => {
    expect(parseUnsavedWorkOutput('@@status\n M a.js\n@@unpushed\n')).toBeNull();
    expect(parseUnsavedWorkOutput('fatal: not a git repository')).toBeNull();
    expect(parseUnsavedWorkOutput('@@status\n@@unpushed\nfatal: bad revision\n@@stashes\n0\n@@end')).toBeNull();
  });

  it('names the unpushed commits (sha and subject) when the script lists them', () => {
    const out = ['@@status', '@@unpushed', '2', '@@stashes', '0', '@@end', '@@commits', 'abc1234 Work in progress', 'def5678 First try', '@@commits-end', ''].join('\n');
    const work = parseUnsavedWorkOutput(out);
    expect(work).toEqual({ files: [], fileCount: 0, unpushedCommits: 2, commits: ['abc1234 Work in progress', 'def5678 First try'], stashes: 0 });
    expect(describeUnsavedWork(work as never)).toBe('2 unpushed commits (abc1234 Work in progress, def5678 First try)');
  });

  it('a disk without a checkout', () => {
    expect(parseUnsavedWorkOutput('@@norepo\n')).toBe('no-repository');
  });
});
