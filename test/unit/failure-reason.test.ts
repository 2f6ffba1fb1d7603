import { describe, expect, it } from 'vitest';
import { explainDiskFull } from '../../worker/failure-reason.js';

describe('explainDiskFull', () => {
  it('says the disk is full, which one and what to do, when the output shows it', () => {
    const msg = explainDiskFull('seed of service web (node seed.js) exited with code 1', "Error: ENOSPC: no space left on device, write\n    at Object.writeSync", 'workspace');
    expect(msg).toMatch(/^seed of service web \(node seed\.js\) exited with code 1: the disk is full/);
    expect(msg).toContain('/workspace');
    expect(explainDiskFull('docker build failed: write /var/lib/docker/tmp/x: no space left on device', '', 'host')).toContain("the Docker host's disk is full");
    expect(explainDiskFull('dd failed', 'dd: error writing: Disk quota exceeded', 'workspace')).toContain('the disk is full');
  });
  it('leaves other failures alone, and does not say it twice', () => {
    expect(explainDiskFull('migrate exited with code 3', 'migration failed: boom', 'workspace')).toBe('migrate exited with code 3');
    const once = explainDiskFull('x', 'ENOSPC', 'workspace');
    expect(explainDiskFull(once, 'ENOSPC', 'workspace')).toBe(once);
  });
});
