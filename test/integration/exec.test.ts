/**
 * execInContainer (Runtime.execIn, devcontainer lifecycle commands) against the real engine,
 * in a throwaway container of the local base image.
 */
import { randomBytes } from 'node:crypto';
import Dockerode from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execInContainer } from '../../worker/runtime/exec.js';
import { KEEP_ALIVE } from '../../lib/devcontainer/translate.js';
import { ensureBaseImage } from '../fixtures/base-image.js';

const docker = new Dockerode();
let container: Dockerode.Container;

describe('execInContainer', () => {
  beforeAll(async () => {
    await ensureBaseImage();
    // the keep-alive a devcontainer runs, under tini as Berth runs services
    container = await docker.createContainer({
      Image: 'berth-base:node20',
      name: `berth-test-exec-${randomBytes(3).toString('hex')}`,
      Cmd: ['sh', '-c', KEEP_ALIVE],
      Labels: { 'berth.test-run': 'exec' },
      HostConfig: { Init: true },
    });
    await container.start();
  });

  afterAll(async () => {
    await container?.remove({ force: true }).catch(() => undefined);
  });

  it('runs a shell command and an exec-form list in the working directory, with output and exit code', async () => {
    const lines: string[] = [];
    const shell = await execInContainer(docker, container, 'pwd; echo to-stderr >&2; exit 3', { workingDir: '/tmp', onLog: (t) => lines.push(t) });
    expect(shell.exitCode).toBe(3);
    expect(shell.tail).toBe('/tmp\nto-stderr');
    expect(lines.join('')).toContain('to-stderr');
    // exec form: the argument reaches the program as it is, no shell reads it
    const list = await execInContainer(docker, container, ['echo', '$HOME; rm -rf /'], {});
    expect(list).toMatchObject({ exitCode: 0, tail: '$HOME; rm -rf /' });
  });

  it('returns when the command ends although what it started in the background keeps running', async () => {
    const started = Date.now();
    const result = await execInContainer(docker, container, 'sleep 300 > /dev/null 2>&1 & echo started', { timeoutMs: 20_000 });
    expect(result).toMatchObject({ exitCode: 0, tail: 'started' });
    expect(result.timedOut).toBeUndefined();
    expect(Date.now() - started).toBeLessThan(10_000);
    const ps = await execInContainer(docker, container, 'ps', {});
    expect(ps.tail).toContain('sleep 300');
  });

  it('kills a command that runs past its time limit', async () => {
    const started = Date.now();
    const result = await execInContainer(docker, container, ['sh', '-c', 'echo begun; sleep 120; echo never'], { timeoutMs: 1_500 });
    expect(result.timedOut).toBe(true);
    expect(result.exitCode).toBe(-1);
    expect(result.tail).toBe('begun');
    expect(Date.now() - started).toBeLessThan(15_000);
    const ps = await execInContainer(docker, container, 'ps', {});
    expect(ps.tail).not.toContain('sleep 120');
  });
});
