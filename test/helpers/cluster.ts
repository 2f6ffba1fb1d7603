/**
 * A test cluster on this one machine: 2–3 Docker hosts, each a network namespace of its own
 * with its own address, its own dockerd (data root, exec root, pid file, API socket, address
 * pool) and, when a test starts one, its own Berth worker. As on separate machines, a host's
 * container addresses are reachable only inside its namespace: the machine (where the test's
 * web process runs) has a route to each host's address, none to its containers. What a test
 * reaches a container through is therefore the host's agent (worker/agent), never a shortcut.
 *
 * Inside each namespace the machine's loopback services a worker needs (PostgreSQL, Redis, the
 * fake GitHub) answer on 127.0.0.1 as on the machine (test/helpers/ns-loopback.mjs), so a worker
 * there takes the same DATABASE_URL, REDIS_URL and clone URLs.
 *
 * Everything is named with the prefix `bcl`; startCluster first removes what a crashed run left
 * (only runs whose test process is gone). The machine's own dockerd is never touched. See
 * /work/notes/18-cluster.md (and docs/scaling.md) for how a test uses host N.
 */
import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Dockerode from 'dockerode';
import { ensureBaseImage, BASE_IMAGE_TAG } from '../fixtures/base-image.js';
import { copyImage } from './private-dockerd.js';
import { waitFor } from './http.js';

const PREFIX = 'bcl';
const ROOT = '/tmp';
const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export interface ClusterHost {
  /** 1-based: "host 2" is hosts[1] */
  readonly index: number;
  /** the network namespace's name; also a fine BERTH_HOST_NAME */
  readonly name: string;
  /** the host's own address: the machine reaches it, and its agent listens on it */
  readonly address: string;
  /** DOCKER_HOST for this host's engine */
  readonly dockerHost: string;
  readonly docker: Dockerode;
  /** the address pool its engine's networks (and so its containers) take addresses from */
  readonly addressPool: string;
  /** spawns a process inside the host's network namespace (nsenter --net keeps cgroups in view) */
  nsenter(command: string, args: string[], opts?: SpawnOptions): ChildProcess;
  /** the engine's log tail, for a failing test's message */
  log(): string;
}

export interface Cluster {
  readonly hosts: ClusterHost[];
  close(): Promise<void>;
}

export interface ClusterWorker {
  readonly process: ChildProcess;
  /** the worker's output so far */
  output(): string;
  stop(): Promise<void>;
}

/**
 * Starts `hosts` Docker hosts. `loopbackPorts`: the machine's 127.0.0.1 ports a process inside
 * a host may use (PostgreSQL and Redis are always added; add the fake GitHub's).
 */
export async function startCluster(opts: { hosts?: number; loopbackPorts?: number[] } = {}): Promise<Cluster> {
  removeLeftovers();
  const run = randomBytes(2).toString('hex');
  const dir = path.join(ROOT, `${PREFIX}${run}`);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'owner'), String(process.pid));
  const ports = [...new Set([portOf(process.env.DATABASE_URL, 5432), portOf(process.env.REDIS_URL, 6379), ...(opts.loopbackPorts ?? [])])];
  // the test process's ends of the namespaces' loopback ports: one unix socket per port
  const relays = ports.map((port) => {
    const socket = path.join(dir, `lo-${port}.sock`);
    const server = net.createServer((client) => {
      const upstream = net.connect(port, '127.0.0.1');
      client.pipe(upstream).pipe(client);
      const close = () => (client.destroy(), upstream.destroy());
      client.on('error', close);
      upstream.on('error', close);
    });
    server.listen(socket);
    return { port, socket, server };
  });
  const hosts: Array<ClusterHost & { destroy(): Promise<void> }> = [];
  const base = await ensureBaseImage();
  const close = async () => {
    for (const h of hosts.reverse()) await h.destroy().catch(() => {});
    for (const r of relays) r.server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (let i = 1; i <= (opts.hosts ?? 2); i++) {
      const host = await startHost(dir, run, i, relays);
      hosts.push(host);
      await copyImage(new Dockerode(), host.docker, base);
    }
  } catch (err) {
    await close();
    throw err;
  }
  return { hosts, close };
}

async function startHost(dir: string, run: string, index: number, relays: Array<{ port: number; socket: string }>): Promise<ClusterHost & { destroy(): Promise<void> }> {
  const name = `${PREFIX}${run}h${index}`;
  const hostDir = path.join(dir, `h${index}`);
  fs.mkdirSync(hostDir);
  const socket = path.join(hostDir, 'docker.sock');
  const logFile = path.join(hostDir, 'dockerd.log');
  const third = freeThirdOctet();
  const address = `10.197.${third}.2`;
  // distinct pools per host: one host's container address never names another's container
  const addressPool = `10.${210 + index}.0.0/16`;
  const ip = (...args: string[]) => {
    const r = spawnSync('ip', args, { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`cluster host ${name}: ip ${args.join(' ')}: ${r.stderr || r.error?.message}`);
  };
  const [outside, inside] = [`${name}o`, `${name}i`];
  ip('netns', 'add', name);
  ip('link', 'add', outside, 'type', 'veth', 'peer', 'name', inside);
  ip('link', 'set', inside, 'netns', name);
  ip('addr', 'add', `10.197.${third}.1/24`, 'dev', outside);
  ip('link', 'set', outside, 'up');
  ip('-n', name, 'addr', 'add', `${address}/24`, 'dev', inside);
  ip('-n', name, 'link', 'set', inside, 'up');
  ip('-n', name, 'link', 'set', 'lo', 'up');
  ip('-n', name, 'route', 'add', 'default', 'via', `10.197.${third}.1`);

  const children: ChildProcess[] = [];
  const nsenter = (command: string, args: string[], o: SpawnOptions = {}) => {
    const child = spawn('nsenter', [`--net=/run/netns/${name}`, command, ...args], { cwd: REPO, ...o });
    children.push(child);
    return child;
  };

  const out = fs.openSync(logFile, 'a');
  const dockerd = nsenter(
    'dockerd',
    [
      '-H', `unix://${socket}`,
      '--data-root', path.join(hostDir, 'data'),
      '--exec-root', path.join(hostDir, 'x'),
      '--pidfile', path.join(hostDir, 'docker.pid'),
      '--bridge', 'none',
      '--iptables=false',
      '--ip-masq=false',
      '--default-address-pool', `base=${addressPool},size=24`,
      '--cgroup-parent', `berth-test-${name}`,
    ],
    { stdio: ['ignore', out, out], detached: true },
  );
  fs.closeSync(out);
  const docker = new Dockerode({ socketPath: socket });
  const log = () => {
    try {
      return fs.readFileSync(logFile, 'utf8').split('\n').slice(-40).join('\n');
    } catch {
      return '(no log)';
    }
  };
  let exited = false;
  dockerd.once('exit', () => (exited = true));
  await waitFor(`cluster host ${name}'s dockerd to answer`, async () => {
    if (exited) throw new Error(`cluster host ${name}'s dockerd exited; its log:\n${log()}`);
    return docker.ping().then(() => true, () => false);
  }, 60_000, 200);

  const loopback = nsenter('node', [path.join(REPO, 'test/helpers/ns-loopback.mjs'), ...relays.map((r) => `${r.port}=${r.socket}`)], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    loopback.stdout!.once('data', () => resolve());
    loopback.once('exit', (code) => reject(new Error(`cluster host ${name}: the loopback relay exited (${code})`)));
  });

  const destroy = async () => {
    if (!exited && (await docker.ping().then(() => true, () => false))) {
      for (const c of await docker.listContainers({ all: true })) await docker.getContainer(c.Id).remove({ force: true, v: true }).catch(() => {});
    }
    for (const c of children.filter((x) => x !== dockerd)) await stopChild(c);
    await stopChild(dockerd, 60_000);
    unmountUnder(hostDir);
    spawnSync('ip', ['link', 'del', outside]);
    spawnSync('ip', ['netns', 'del', name]);
  };
  return { index, name, address, dockerHost: `unix://${socket}`, docker, addressPool, nsenter, log, destroy };
}

/**
 * A Berth worker (`worker/main.ts`, as `npm run start:worker` runs it) inside host `host`,
 * on its engine. `env` is its whole configuration on top of PATH/HOME (DATABASE_URL, the App…).
 * Resolves once it logged that it started.
 */
export async function startClusterWorker(host: ClusterHost, env: Record<string, string>): Promise<ClusterWorker> {
  let text = '';
  const child = host.nsenter(process.execPath, ['--import', 'tsx', 'worker/main.ts'], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', LOG_FORMAT: 'json', DOCKER_HOST: host.dockerHost, BERTH_SSH_PORT: 'off', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (c: Buffer) => (text += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (text += c.toString()));
  let exitCode: number | null | undefined;
  child.once('exit', (code, signal) => (exitCode = code ?? (signal ? -1 : 0)));
  await waitFor(`the worker on ${host.name} to start`, async () => {
    if (exitCode !== undefined) throw new Error(`the worker on ${host.name} exited (${exitCode}):\n${text.slice(-3000)}`);
    return text.includes('worker started');
  }, 120_000, 200);
  return { process: child, output: () => text, stop: () => stopChild(child, 15_000) };
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves when it has exited */
async function stopChild(child: ChildProcess, graceMs = 5_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

function portOf(url: string | undefined, fallback: number): number {
  try {
    return Number(new URL(url!).port) || fallback;
  } catch {
    return fallback;
  }
}

function freeThirdOctet(): number {
  const used = spawnSync('ip', ['-4', '-o', 'addr'], { encoding: 'utf8' }).stdout;
  for (;;) {
    const n = randomBytes(1)[0]!;
    if (!used.includes(`10.197.${n}.`)) return n;
  }
}

function unmountUnder(dir: string) {
  const mounts = fs.readFileSync('/proc/mounts', 'utf8').split('\n').map((l) => l.split(' ')[1] ?? '').filter((m) => m.startsWith(dir + '/'));
  for (const m of mounts.sort().reverse()) spawnSync('umount', ['-l', m]);
}

/**
 * What a crashed run left: its processes (found by its folder, environment or cgroup), mounts,
 * namespaces, veths and folders. A run whose test process still
 * lives is someone else's and stays.
 */
function removeLeftovers() {
  for (const entry of fs.readdirSync(ROOT)) {
    if (!new RegExp(`^${PREFIX}[0-9a-f]{4}$`).test(entry)) continue;
    const dir = path.join(ROOT, entry);
    const owner = Number(readOr(path.join(dir, 'owner'), '0'));
    if (owner && alive(owner)) continue;
    // its dockerds, containerds and shims name the run's folder, its workers and relays have it in
    // their environment or arguments, its containers' processes sit in its cgroups
    for (const pid of fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p)).map(Number)) {
      if (pid === process.pid) continue;
      const seen = readOr(`/proc/${pid}/cmdline`, '') + readOr(`/proc/${pid}/environ`, '') + readOr(`/proc/${pid}/cgroup`, '');
      if (seen.includes(dir + '/') || seen.includes(`berth-test-${entry}`)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone already
        }
      }
    }
    unmountUnder(dir);
    for (const ns of spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout.split('\n').map((l) => l.split(' ')[0]!)) {
      if (ns.startsWith(entry)) spawnSync('ip', ['netns', 'del', ns]);
    }
    for (const link of spawnSync('ip', ['-o', 'link'], { encoding: 'utf8' }).stdout.split('\n').map((l) => /^\d+: ([^:@]+)/.exec(l)?.[1] ?? '')) {
      if (link.startsWith(entry)) spawnSync('ip', ['link', 'del', link]);
    }
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function readOr(file: string, fallback: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return fallback;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
