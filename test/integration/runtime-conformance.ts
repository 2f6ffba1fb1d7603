/**
 * The promises every runtime keeps, as one suite run against each (as BullMQ runs one suite per
 * queue backend): `runtimeConformance('docker', factory)` in runtime-conformance.test.ts; a
 * runtime for workspaces on another host, or another engine, adds a line of its own.
 *
 * It covers what jobs and the web rely on, in Berth's words: a disk that outlives its
 * containers, one-off tasks with exit codes, output tails and time limits, services that
 * answer and report their state, commands in a running service, stop keeping the disk,
 * remove taking everything, the inventory the reconciler reads, and the web's door
 * (WorkspaceAccess): containers for the page, a shell with stdin/stdout/exit codes and a
 * terminal, and `ssh -L` targets limited to the workspace's own containers.
 *
 * Services run an image the factory names (`image`): it must have `sh`, `cat`, `sleep` and
 * `node`. Nothing here reaches a container's address directly: a runtime whose containers
 * live on another host answers through its own methods (waitHealthy, execIn, exec).
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WorkspaceAccess } from '../../lib/workspace-access.js';
import type { Runtime, ServiceRunSpec, WorkspaceRunSpec } from '../../worker/runtime/types.js';

export interface ConformanceTarget {
  runtime: Runtime;
  /** the web's door to the same engine's workspaces */
  access: WorkspaceAccess;
  /** an image the runtime can run without building or pulling (sh, cat, sleep, node) */
  image: string;
  close(): Promise<void>;
}

/** answers /health and /file?name=… (a file of /workspace), logs a line when it listens */
const SERVER = `require('http').createServer((q, s) => { const u = new URL(q.url, 'http://x'); if (u.pathname === '/health') return s.end('ok'); try { s.end(require('fs').readFileSync('/workspace/' + u.searchParams.get('name'))); } catch (e) { s.statusCode = 404; s.end('no'); } }).listen(3000, () => console.log('conformance server listening'))`;

export function runtimeConformance(name: string, factory: () => Promise<ConformanceTarget>): void {
  describe(`runtime conformance: ${name}`, () => {
    const RUN = randomBytes(3).toString('hex');
    let t: ConformanceTarget;
    const made = new Set<string>();

    const spec = (key: string, services: ServiceRunSpec[] = [web()]): WorkspaceRunSpec => {
      const workspaceId = `conf-${RUN}-${key}`;
      made.add(workspaceId);
      return { workspaceId, slug: `conf-${RUN}-${key}`, services, memoryBytes: 256 * 1024 ** 2, cpus: 1 };
    };
    const web = (over: Partial<ServiceRunSpec> = {}): ServiceRunSpec => ({
      name: 'web',
      image: t.image,
      command: `node -e "${SERVER}"`,
      env: { GREETING: 'hello from web' },
      port: 3000,
      health: '/health',
      mountsWorkspace: true,
      ...over,
    });
    /** a running workspace with `files` on its disk */
    const running = async (key: string, files: { path: string; content: string }[] = []) => {
      const s = spec(key);
      await t.runtime.ensureImage(t.image);
      await t.runtime.ensureDisk(s);
      if (files.length) await t.runtime.writeWorkspaceFiles(s, files);
      const endpoints = await t.runtime.startServices(s);
      await t.runtime.waitHealthy(s, endpoints[0]!, 3000, '/health', 30_000);
      return { s, endpoints };
    };

    beforeAll(async () => {
      t = await factory();
    }, 180_000);

    afterAll(async () => {
      for (const id of made) await t?.runtime.removeWorkspace(id).catch(() => undefined);
      await t?.close();
    }, 120_000);

    it('ping answers while the engine is up', async () => {
      await t.runtime.ping();
      await t.access.ping();
    });

    it('a disk is made once, keeps its files through stop and start, and goes with remove', async () => {
      const s = spec('disk');
      expect(await t.runtime.ensureDisk(s)).toEqual({ created: true });
      expect(await t.runtime.ensureDisk(s)).toEqual({ created: false });
      await t.runtime.writeWorkspaceFiles(s, [{ path: 'notes/kept.txt', content: 'still here' }]);
      expect(await t.runtime.diskEntryExists(s, 'notes/kept.txt')).toBe(true);
      expect(await t.runtime.diskEntryExists(s, 'notes/other.txt')).toBe(false);
      await t.runtime.startServices(s);
      await t.runtime.stopServices(s.workspaceId);
      expect(await t.runtime.status(s.workspaceId)).toEqual([]);
      expect(await t.runtime.runningWorkspaceIds()).not.toContain(s.workspaceId);
      // the stop kept the disk: a task sees the file
      const task = await t.runtime.runTask(s, 'web', 'cat /workspace/notes/kept.txt');
      expect(task).toMatchObject({ exitCode: 0 });
      expect(task.tail).toContain('still here');
      expect(await t.runtime.listWorkspaceIds()).toContain(s.workspaceId);
      expect((await t.runtime.listWorkspaceVolumes()).map((v) => v.workspaceId)).toContain(s.workspaceId);

      await t.runtime.removeWorkspace(s.workspaceId, s.slug);
      expect(await t.runtime.listWorkspaceIds()).not.toContain(s.workspaceId);
      expect((await t.runtime.listWorkspaceVolumes()).map((v) => v.workspaceId)).not.toContain(s.workspaceId);
      expect(await t.runtime.ensureDisk(s)).toEqual({ created: true }); // a new, empty disk
      expect(await t.runtime.diskEntryExists(s, 'notes/kept.txt')).toBe(false);
    });

    it('writeWorkspaceFiles refuses a path that leaves /workspace', async () => {
      const s = spec('escape');
      await t.runtime.ensureDisk(s);
      await expect(t.runtime.writeWorkspaceFiles(s, [{ path: '../etc/evil', content: 'x' }])).rejects.toThrow();
      expect(await t.runtime.diskEntryExists(s, '../etc/evil')).toBe(false);
    });

    it('a task reports its exit code, its last lines and its time limit', async () => {
      const s = spec('task');
      await t.runtime.ensureDisk(s);
      const lines: string[] = [];
      const ok = await t.runtime.runTask(s, 'web', 'echo "$GREETING"; echo to-stderr >&2', (text) => lines.push(text));
      expect(ok).toMatchObject({ exitCode: 0, oomKilled: false });
      expect(ok.tail).toContain('hello from web');
      expect(ok.tail).toContain('to-stderr');
      expect(lines.join('')).toContain('hello from web');

      const failed = await t.runtime.runTask(s, 'web', 'echo about to fail; exit 3');
      expect(failed.exitCode).toBe(3);
      expect(failed.tail).toContain('about to fail');

      const started = Date.now();
      const slow = await t.runtime.runTask(s, 'web', 'sleep 60', undefined, { timeoutMs: 1_500 });
      expect(slow.timedOut).toBe(true);
      expect(slow.exitCode).not.toBe(0);
      expect(Date.now() - started).toBeLessThan(30_000);
    });

    it('services start, answer their health check, report running, and log', async () => {
      const { s, endpoints } = await running('services');
      expect(endpoints.map((e) => e.service)).toEqual(['web']);
      const status = await t.runtime.status(s.workspaceId);
      expect(status).toHaveLength(1);
      expect(status[0]).toMatchObject({ service: 'web', state: 'running', containerId: endpoints[0]!.containerId });
      expect(await t.runtime.runningWorkspaceIds()).toContain(s.workspaceId);
      await expect.poll(() => t.runtime.containerLogTail(endpoints[0]!.containerId), { timeout: 10_000 }).toContain('conformance server listening');
    });

    it('a service that never answers fails waitHealthy within its time limit', async () => {
      const s = spec('unhealthy', [web({ command: 'sleep 600' })]);
      await t.runtime.ensureImage(t.image);
      await t.runtime.ensureDisk(s);
      const [endpoint] = await t.runtime.startServices(s);
      const started = Date.now();
      await expect(t.runtime.waitHealthy(s, endpoint!, 3000, '/health', 2_000)).rejects.toThrow();
      expect(Date.now() - started).toBeLessThan(30_000);
    });

    it('execIn runs in the running service, on its disk, with its exit code', async () => {
      const { s } = await running('exec', [{ path: 'hello.txt', content: 'on the disk' }]);
      const out = await t.runtime.execIn!(s, { service: 'web' }, 'cat hello.txt; echo "$GREETING"', { workingDir: '/workspace' });
      expect(out.exitCode).toBe(0);
      expect(out.tail).toContain('on the disk');
      expect(out.tail).toContain('hello from web');
      expect((await t.runtime.execIn!(s, { service: 'web' }, ['sh', '-c', 'exit 4'])).exitCode).toBe(4);
      const slow = await t.runtime.execIn!(s, { service: 'web' }, 'sleep 60', { timeoutMs: 1_500 });
      expect(slow.timedOut).toBe(true);
    });

    it('the web sees the containers, gets a shell with stdin, stdout, stderr and exit code, and a terminal', async () => {
      const { s, endpoints } = await running('access', [{ path: 'greeting.txt', content: 'from the disk' }]);
      const views = await t.access.containersOf(s.workspaceId);
      expect(views?.map((v) => [v.service, v.role, v.state])).toEqual([['web', 'service', 'running']]);
      expect(await t.access.ideEndpoint(s.workspaceId)).toBeNull();

      const shell = await t.access.mainContainer(s.workspaceId, 'web');
      expect(shell?.id).toBe(endpoints[0]!.containerId);
      const exec = await shell!.exec({ argv: ['sh', '-c', 'cat greeting.txt; read line; echo "got $line"; echo oops >&2; exit 5'], stdin: true, workingDir: '/workspace' });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      exec.stdout.on('data', (c: Buffer) => out.push(c));
      exec.stderr.on('data', (c: Buffer) => err.push(c));
      exec.stdin.end('typed\n');
      expect(await exec.ended).toBe('end');
      expect(Buffer.concat(out).toString()).toBe('from the diskgot typed\n');
      expect(Buffer.concat(err).toString()).toBe('oops\n');
      expect(await exec.exitCode()).toBe(5);

      const tty = await shell!.exec({ argv: ['sh', '-c', 'sleep 0.3; stty size; exit 0'], tty: true, stdin: true, env: ['TERM=xterm'] });
      await tty.resize(123, 45);
      const screen: Buffer[] = [];
      tty.stdout.on('data', (c: Buffer) => screen.push(c));
      await tty.ended;
      expect(Buffer.concat(screen).toString()).toContain('45 123');
      expect(await shell!.gateway()).toEqual(expect.any(String));
    });

    it('ssh -L targets: only the workspace’s own containers', async () => {
      const a = await running('fwd-a');
      const b = await running('fwd-b');
      const mainA = a.endpoints[0]!.containerId;
      const ipA = await t.access.forwardTarget(a.s.workspaceId, mainA, 'localhost');
      expect(ipA).toEqual(expect.any(String));
      expect(await t.access.forwardTarget(a.s.workspaceId, mainA, 'web')).toBe(ipA);
      expect(await t.access.forwardTarget(a.s.workspaceId, mainA, ipA!)).toBe(ipA);
      const ipB = await t.access.forwardTarget(b.s.workspaceId, b.endpoints[0]!.containerId, 'web');
      expect(ipB).toEqual(expect.any(String));
      // another workspace's container, the internet, the engine's host: refused
      expect(await t.access.forwardTarget(a.s.workspaceId, mainA, ipB!)).toBeNull();
      expect(await t.access.forwardTarget(a.s.workspaceId, mainA, '8.8.8.8')).toBeNull();
      expect(await t.access.forwardTarget(a.s.workspaceId, mainA, (await t.access.mainContainer(a.s.workspaceId, 'web').then((sh) => sh!.gateway()))!)).toBeNull();
    });

    it('stop ends every container of the workspace; the web then finds no shell', async () => {
      const { s } = await running('stop');
      await t.runtime.stopServices(s.workspaceId);
      expect(await t.runtime.status(s.workspaceId)).toEqual([]);
      expect(await t.access.mainContainer(s.workspaceId, 'web')).toBeNull();
      expect((await t.access.containersOf(s.workspaceId))?.filter((c) => c.state === 'running')).toEqual([]);
    });
  });
}
