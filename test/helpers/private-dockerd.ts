/**
 * A Docker engine of a test's own, for tests that stop and start the engine.
 *
 * The machine's dockerd is shared by everyone running tests on it; stopping it would kill
 * their containers. This one has its own API socket, data root, exec root (so its own
 * containerd), pid file and cgroup parent; no default bridge and no iptables rules (Berth
 * reaches containers by their address on the networks it creates, so no NAT is needed), and
 * an address pool that does not overlap the machine engine's 172.16.0.0/12.
 */
import { spawn, type ChildProcess } from 'node:child_process';
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
  const pool = opts.addressPool ?? `base=10.${200 + (randomBytes(1)[0]! % 8)}.0.0/16,size=24`;
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
    const proc = spawn('dockerd', args, { stdio: ['ignore', out, out], detached: true });
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
  }

  await start();
  return { host, docker, dir, start, stop, destroy, log: tail };
}

/** Copies an image (e.g. the test base image) from one engine to another: no registry needed. */
export async function copyImage(from: Dockerode, to: Dockerode, tag: string): Promise<void> {
  const stream = await from.getImage(tag).get();
  const res = await to.loadImage(stream);
  await new Promise<void>((resolve, reject) => to.modem.followProgress(res, (err: Error | null) => (err ? reject(err) : resolve())));
  await to.getImage(tag).inspect();
}
