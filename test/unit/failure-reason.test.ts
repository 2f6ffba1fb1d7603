import { describe, expect, it } from 'vitest';
import { explainDiskFull, explainWorkspaceFailure } from '../../worker/failure-reason.js';

const seedFailed = 'seed of service web (node seed.js) exited with code 1';
const enospc = "Error: ENOSPC: no space left on device, write\n    at Object.writeSync";

describe('explainDiskFull', () => {
  it('names the full disk and what to do, by where the disk lives and what was running', () => {
    const own = explainDiskFull(seedFailed, enospc, { during: 'start', disk: 'own' });
    expect(own).toMatch(/^seed of service web \(node seed\.js\) exited with code 1: the workspace disk is full/);
    // a failed workspace has no IDE: the way out of a full disk is a fresh one
    expect(own).toContain('delete the workspace');
    expect(own).not.toContain('IDE');
    expect(explainDiskFull('service web has exited (exit code 1)', enospc, { during: 'service', disk: 'own' })).toContain('free space under /workspace from the IDE terminal');
    expect(explainDiskFull(seedFailed, enospc, { during: 'start', disk: 'host' })).toContain("the Docker host's disk is full");
    expect(explainDiskFull(seedFailed, enospc, { during: 'start', disk: 'unknown' })).toContain("the workspace disk or the Docker host's");
    expect(explainDiskFull('docker build failed: write /var/lib/docker/tmp/x: no space left on device', '', { during: 'build' })).toContain("the Docker host's disk is full");
    expect(explainDiskFull('dd failed', 'dd: error writing: Disk quota exceeded', { during: 'start', disk: 'own' })).toContain('the workspace disk is full');
  });

  it('leaves other failures alone, and does not say it twice', () => {
    expect(explainDiskFull('migrate exited with code 3', 'migration failed: boom', { during: 'start', disk: 'own' })).toBe('migrate exited with code 3');
    const once = explainDiskFull('x', 'ENOSPC', { during: 'service', disk: 'own' });
    expect(explainDiskFull(once, 'ENOSPC', { during: 'service', disk: 'own' })).toBe(once);
  });

  it('asks the engine where the disk lives only when a disk is full', async () => {
    const asked: string[] = [];
    const runtime = { workspaceDiskPlace: async (slug: string) => (asked.push(slug), 'own' as const) };
    expect(await explainWorkspaceFailure(runtime, 'a-slug', 'start', 'migrate exited with code 3', 'boom')).toBe('migrate exited with code 3');
    expect(asked).toEqual([]);
    expect(await explainWorkspaceFailure(runtime, 'a-slug', 'start', seedFailed, enospc)).toContain('the workspace disk is full');
    expect(asked).toEqual(['a-slug']);
  });
});
