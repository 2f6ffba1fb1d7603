/**
 * A Docker engine of a test's own, for tests that stop and start the engine.
 *
 * The machine's dockerd is shared by everyone running tests on it; stopping it would kill
 * their containers. This one has its own API socket, data root, exec root (so its own
 * containerd), pid file and cgroup parent; no default bridge and no iptables rules (Berth
 * reaches containers by their address on the networks it creates, so no NAT is needed), and
 * an address pool that does not overlap the machine engine's 172.16.0.0/12.
 *
 * It runs in a network namespace of its own (entered with nsenter, which keeps the machine's
 * cgroups in view, unlike `ip netns exec`), joined to the machine by a veth pair with a route
 * to its address pool: a second dockerd in the machine's namespace deletes the interface
 * `docker0` when it restarts on its data (seen here), which is the machine engine's bridge, and
 * every later `RUN` step on the machine then fails with "could not find bridge docker0".
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Dockerode from 'dockerode';
import { waitFor } from './http.js';

export interface PrivateDockerd {
  /** DOCKER_HOST value for this engine */
  readonly host: string;
  readonly docker: Dockerode;
  readonly dir: string;
  /** SIGTERM, as an init system stops dockerd; resolves when it has exited */
  stop(): Promise<void>;
  /** starts it again on the same data (containers with a restart policy come back) */
  start(): Promise<void>;
  /** removes every container, stops the engine and deletes its directory */
  destroy(): Promise<void>;
  /** the engine's own log, for a failing test's message */
  log(): string;
}

/**
 * Starts a private dockerd. `addressPool` must not overlap another engine's networks; the
 * default takes a /16 out of 10.200.0.0/13 picked at random (two private engines at once
 * rarely share one, and the test that does fails on network creation, not silently).
 */
export async function startPrivateDockerd(opts: { addressPool?: string } = {}): Promise<PrivateDockerd> {
  // Unix socket paths are limited to 108 bytes: keep the directory short.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bd-'));
  const socket = path.join(dir, 'docker.sock');
  const pidfile = path.join(dir, 'docker.pid');
  const logFile = path.join(dir, 'dockerd.log');
  const second = 200 + (randomBytes(1)[0]! % 8);
  const pool = opts.addressPool ?? `base=10.${second}.0.0/16,size=24`;
  const net = privateNetwork(path.basename(dir), pool);
  const host = `unix://${socket}`;
  const docker = new Dockerode({ socketPath: socket });
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();

  const answers = () =>
    docker
      .ping()
      .then(() => true)
      .catch(() => false);

  async function start() {
    const out = fs.openSync(logFile, 'a');
    const args = [
      '-H', host,
      '--data-root', path.join(dir, 'data'),
      '--exec-root', path.join(dir, 'x'),
      '--pidfile', pidfile,
      '--bridge', 'none',
      '--iptables=false',
      '--ip-masq=false',
      '--default-address-pool', pool,
      '--cgroup-parent', `berth-test-${path.basename(dir)}`,
    ];
    // nsenter execs dockerd: the child's pid is dockerd's
    const proc = spawn('nsenter', [`--net=/run/netns/${net.name}`, 'dockerd', ...args], { stdio: ['ignore', out, out], detached: true });
    fs.closeSync(out);
    child = proc;
    let failed: Error | undefined;
    exited = new Promise((resolve) => {
      proc.once('exit', (code, signal) => {
        failed = new Error(`the private dockerd exited (${signal ?? code}) before answering; its log:\n${tail()}`);
        resolve();
      });
      proc.once('error', (err) => {
        failed = new Error(`the private dockerd could not start: ${err.message}`);
        resolve();
      });
    });
    await waitFor('the private dockerd to answer', async () => {
      if (failed) throw failed;
      return answers();
    }, 60_000, 200);
  }

  async function stop() {
    const proc = child;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), 60_000);
    await exited;
    clearTimeout(timer);
    child = undefined;
  }

  const tail = () => {
    try {
      return fs.readFileSync(logFile, 'utf8').split('\n').slice(-40).join('\n');
    } catch {
      return '(no log)';
    }
  };

  async function destroy() {
    if (child && (await answers())) {
      for (const c of await docker.listContainers({ all: true })) await docker.getContainer(c.Id).remove({ force: true, v: true }).catch(() => {});
    }
    await stop();
    // dockerd unmounts its layers on the way out; anything left mounted must not be deleted through
    const mounted = fs.readFileSync('/proc/mounts', 'utf8').split('\n').map((l) => l.split(' ')[1] ?? '').filter((m) => m.startsWith(dir + '/'));
    if (mounted.length === 0) fs.rmSync(dir, { recursive: true, force: true });
    net.remove();
  }

  try {
    await start();
  } catch (err) {
    net.remove();
    throw err;
  }
  return { host, docker, dir, start, stop, destroy, log: tail };
}

/** Copies an image (e.g. the test base image) from one engine to another: no registry needed. */
export async function copyImage(from: Dockerode, to: Dockerode, tag: string): Promise<void> {
  const stream = await from.getImage(tag).get();
  const res = await to.loadImage(stream);
  await new Promise<void>((resolve, reject) => to.modem.followProgress(res, (err: Error | null) => (err ? reject(err) : resolve())));
  await to.getImage(tag).inspect();
}

/**
 * A network namespace for a private dockerd, reachable from the machine: a veth pair on a /30
 * of 10.198.0.0/16 and a route to the engine's address pool through it (forwarding on inside).
 */
function privateNetwork(id: string, pool: string): { name: string; remove(): void } {
  const tag = id.replace(/[^a-zA-Z0-9]/g, '').slice(-6).toLowerCase() + randomBytes(2).toString('hex');
  const name = `bd${tag}`;
  const [hostIf, nsIf] = [`bdh${tag}`, `bdn${tag}`];
  const third = randomBytes(1)[0]!;
  const block = /base=([0-9.]+\/\d+)/.exec(pool)?.[1];
  if (!block) throw new Error(`cannot route to the private dockerd's address pool ${pool}`);
  const ip = (...args: string[]) => {
    const r = spawnSync('ip', args, { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`could not set up the private dockerd's network (ip ${args.join(' ')}): ${r.stderr || r.error?.message}`);
  };
  const remove = () => {
    spawnSync('ip', ['route', 'del', block]);
    spawnSync('ip', ['link', 'del', hostIf]);
    spawnSync('ip', ['netns', 'del', name]);
  };
  try {
    ip('netns', 'add', name);
    ip('link', 'add', hostIf, 'type', 'veth', 'peer', 'name', nsIf);
    ip('link', 'set', nsIf, 'netns', name);
    ip('addr', 'add', `10.198.${third}.1/30`, 'dev', hostIf);
    ip('link', 'set', hostIf, 'up');
    ip('-n', name, 'addr', 'add', `10.198.${third}.2/30`, 'dev', nsIf);
    ip('-n', name, 'link', 'set', nsIf, 'up');
    ip('-n', name, 'link', 'set', 'lo', 'up');
    ip('-n', name, 'route', 'add', 'default', 'via', `10.198.${third}.1`);
    const fwd = spawnSync('nsenter', [`--net=/run/netns/${name}`, 'sh', '-c', 'echo 1 > /proc/sys/net/ipv4/ip_forward'], { encoding: 'utf8' });
    if (fwd.status !== 0) throw new Error(`could not turn on forwarding in the private dockerd's namespace: ${fwd.stderr}`);
    ip('route', 'add', block, 'via', `10.198.${third}.2`);
  } catch (err) {
    remove();
    throw err;
  }
  return { name, remove };
}
