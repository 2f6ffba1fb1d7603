import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { BerthError } from '../../lib/errors.js';
import { nginxConfig, type NativeRoute, type NginxConfigInput } from './nginx-config.js';

/** The native proxy could not be started; `message` says why (Berth then serves with Node). */
export class NativeProxyUnavailable extends BerthError {
  constructor(message: string) {
    super(message, 'native_proxy');
  }
}

/** route changes found by the poll together (a rollout, several stops) are one reload */
const RELOAD_DEBOUNCE_MS = 20;
const START_TIMEOUT_MS = 10_000;
const STOP_GRACE_MS = 3_000;

/** nginx from Debian's packages (nginx-light or nginx), wherever PATH does or does not reach */
export function findNginx(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const dirs = [...(env.PATH ?? '').split(':').filter(Boolean), '/usr/sbin', '/usr/local/sbin'];
  return dirs.map((d) => path.join(d, 'nginx')).find((p) => existsSync(p));
}

export interface NativeProxyOptions {
  binary: string;
  /** its own folder (config, pid, error log, activity log); nothing else of nginx's is touched */
  dir: string;
  listenHost: string;
  listenPort: number;
  berthPort: number;
  previewDomain: string;
  /** BERTH_URL's hostname, read at each write (a test sets BERTH_URL once the port is known) */
  berthHostname: () => string;
  /** told once when nginx exits on its own (it is started again) */
  onExit?: (message: string) => void;
}

/**
 * nginx run by Berth as its child, in front of Berth's web server (app/gateway/native-front.ts):
 * its own configuration, pid file and logs in `dir`, reloaded by signal when the routes
 * change, stopped with Berth. A system nginx and its configuration are never touched.
 */
export class NativeProxy {
  private child?: ChildProcess;
  private routes: NativeRoute[] = [];
  private written = '';
  private reloadTimer?: NodeJS.Timeout;
  private closing = false;
  private restarts = 0;

  private constructor(
    private readonly opts: NativeProxyOptions,
    private readonly tempDir: string,
  ) {}

  static async start(opts: NativeProxyOptions): Promise<NativeProxy> {
    await fs.mkdir(opts.dir, { recursive: true, mode: 0o700 });
    await stopLeftover(opts.dir);
    // request bodies nginx keeps on disk: a folder its workers (nobody, when Berth is root) can enter
    const tempDir = await fs.mkdtemp(path.join(os.tmpdir(), 'berth-nginx-'));
    await fs.chmod(tempDir, 0o711);
    const proxy = new NativeProxy(opts, tempDir);
    try {
      await proxy.spawn();
    } catch (err) {
      await fs.rm(tempDir, { recursive: true, force: true });
      throw err;
    }
    return proxy;
  }

  get configFile() {
    return path.join(this.opts.dir, 'nginx.conf');
  }

  get activityLog() {
    return path.join(this.opts.dir, 'activity.log');
  }

  /**
   * The routes nginx serves; a change is written and reloaded, debounced, or with `immediate` at
   * once, resolving when nginx's new worker serves them (a stop waits for that before it stops
   * the containers).
   */
  async setRoutes(routes: NativeRoute[], immediate = false): Promise<void> {
    this.routes = routes;
    if (this.render() === this.written) return;
    if (immediate) {
      clearTimeout(this.reloadTimer);
      this.reloadTimer = undefined;
      return this.reload();
    }
    if (this.reloadTimer) return;
    this.reloadTimer = setTimeout(() => {
      this.reloadTimer = undefined;
      void this.reload();
    }, RELOAD_DEBOUNCE_MS);
    this.reloadTimer.unref();
  }

  /** nginx reopens its logs (after the activity log was moved away) */
  reopenLogs(): void {
    this.child?.kill('SIGUSR1');
  }

  async close(): Promise<void> {
    this.closing = true;
    clearTimeout(this.reloadTimer);
    const child = this.child;
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGQUIT'); // graceful: requests in flight end
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
      await exited;
      clearTimeout(timer);
    }
    await fs.rm(this.tempDir, { recursive: true, force: true }).catch(() => {});
    // its folder is of this run only (config, pid, logs): a port's next Berth writes its own
    await fs.rm(this.opts.dir, { recursive: true, force: true }).catch(() => {});
  }

  private render(): string {
    const input: NginxConfigInput = {
      listenHost: this.opts.listenHost,
      listenPort: this.opts.listenPort,
      berthAddress: '127.0.0.1',
      berthPort: this.opts.berthPort,
      dir: this.opts.dir,
      tempDir: this.tempDir,
      previewDomain: this.opts.previewDomain,
      berthHostname: this.opts.berthHostname(),
      workerUser: process.getuid?.() === 0 ? 'nobody nogroup' : undefined,
      routes: this.routes,
    };
    return nginxConfig(input);
  }

  private async writeConfig(): Promise<void> {
    const text = this.render();
    const tmp = `${this.configFile}.${process.pid}.tmp`;
    await fs.writeFile(tmp, text, { mode: 0o600 });
    await fs.rename(tmp, this.configFile);
    this.written = text;
  }

  private async reload(): Promise<void> {
    if (this.closing) return;
    try {
      const pid = this.child?.pid;
      const before = pid ? await workersOf(pid) : [];
      await this.writeConfig();
      this.child?.kill('SIGHUP');
      // the new configuration serves once a new worker runs (the old ones finish what they have)
      for (let i = 0; pid && i < 100 && (await workersOf(pid)).every((w) => before.includes(w)); i++) await new Promise((r) => setTimeout(r, 5));
    } catch {
      // the folder is gone or full: the next change tries again
      this.written = '';
    }
  }

  private async spawn(): Promise<void> {
    await this.writeConfig();
    const pidFile = path.join(this.opts.dir, 'nginx.pid');
    await fs.rm(pidFile, { force: true });
    const errorLog = path.join(this.opts.dir, 'error.log');
    const child = spawn(this.opts.binary, ['-p', `${this.opts.dir}/`, '-c', this.configFile, '-e', errorLog, '-g', 'daemon off;'], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.child = child;
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
    const early = new Promise<never>((_, fail) =>
      child.once('exit', (code, signal) => fail(new NativeProxyUnavailable(`nginx exited at start (${signal ?? `code ${code}`}): ${lastLines(stderr) || 'see ' + errorLog}`))),
    );
    early.catch(() => {});
    child.once('error', () => {});
    const deadline = Date.now() + START_TIMEOUT_MS;
    try {
      // the pid file is written once the listening sockets are open
      while (!existsSync(pidFile) || !(await answers(this.opts.listenHost, this.opts.listenPort))) {
        if (Date.now() > deadline) throw new NativeProxyUnavailable(`nginx did not listen on port ${this.opts.listenPort} within ${START_TIMEOUT_MS / 1000} s: ${lastLines(stderr) || 'see ' + errorLog}`);
        await Promise.race([early, new Promise((r) => setTimeout(r, 20))]);
      }
    } catch (err) {
      child.kill('SIGKILL');
      throw err;
    }
    child.once('exit', (code, signal) => {
      if (this.closing) return;
      this.opts.onExit?.(`nginx (the native proxy) exited (${signal ?? `code ${code}`}): ${lastLines(stderr) || 'see ' + errorLog}; starting it again`);
      if (this.restarts++ > 20) return;
      setTimeout(() => void this.spawn().catch((err) => this.opts.onExit?.(String((err as Error).message))), 1000).unref();
    });
  }
}

/** an nginx of an earlier Berth on this folder (killed with SIGKILL): stopped before ours starts */
async function stopLeftover(dir: string): Promise<void> {
  const pid = Number((await fs.readFile(path.join(dir, 'nginx.pid'), 'utf8').catch(() => '')).trim());
  if (!Number.isInteger(pid) || pid <= 1) return;
  const cmdline = await fs.readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  if (!cmdline.includes('nginx') || !cmdline.includes(dir)) return;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  for (let i = 0; i < 100 && existsSync(`/proc/${pid}`); i++) await new Promise((r) => setTimeout(r, 20));
}

/** nginx's worker processes: its master's children */
async function workersOf(pid: number): Promise<string[]> {
  const text = await fs.readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => '');
  return text.split(' ').filter(Boolean);
}

function answers(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host);
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}

function lastLines(text: string): string {
  return text.trim().split('\n').slice(-3).join(' ').trim();
}
