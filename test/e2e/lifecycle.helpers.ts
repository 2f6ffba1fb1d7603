/**
 * Helpers of the workspace lifecycle end-to-end tests (lifecycle*.test.ts): look at what the
 * Docker engine really runs, read a workspace's disk, and stop and start dockerd itself.
 */
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import { promisify } from 'node:util';
import Dockerode from 'dockerode';
import { dockerNames, LABELS } from '../../worker/runtime/docker.js';
import { waitFor } from '../helpers/http.js';

export const docker = new Dockerode();
const run = promisify(execFile);

/** Containers Berth runs for a workspace (any state); `role` service, ide or task. */
export function containersOf(workspaceId: string, role = 'service', all = true) {
  return docker.listContainers({ all, filters: { label: [`${LABELS.workspace}=${workspaceId}`, `${LABELS.role}=${role}`] } });
}

/** The running container of a service. */
export async function serviceContainer(workspaceId: string, service = 'web') {
  const [c] = await docker.listContainers({ filters: { label: [`${LABELS.workspace}=${workspaceId}`, `${LABELS.role}=service`, `${LABELS.service}=${service}`] } });
  if (!c) throw new Error(`no running ${service} container for ${workspaceId}`);
  return c;
}

/** `docker exec` in a running container, as the terminal IDE does; returns stdout. */
export async function dockerExec(containerId: string, script: string): Promise<string> {
  const { stdout } = await run('docker', ['exec', containerId, 'sh', '-c', script]);
  return stdout;
}

/** A file on the workspace disk, read through the volume's mountpoint (works while it is stopped). */
export async function diskFile(slug: string, rel: string): Promise<string | null> {
  const info = await docker.getVolume(dockerNames.workspaceVolume(slug)).inspect();
  try {
    return fs.readFileSync(`${info.Mountpoint}/${rel}`, 'utf8');
  } catch {
    return null;
  }
}

export async function writeDiskFile(slug: string, rel: string, text: string): Promise<void> {
  const info = await docker.getVolume(dockerNames.workspaceVolume(slug)).inspect();
  fs.writeFileSync(`${info.Mountpoint}/${rel}`, text);
}

export const lineCount = (text: string | null) => (text ?? '').split('\n').filter((l) => l.trim()).length;

export async function volumeExists(name: string): Promise<boolean> {
  return docker
    .getVolume(name)
    .inspect()
    .then(() => true)
    .catch(() => false);
}

// --- dockerd -------------------------------------------------------------------------------------

const SOCKET = '/var/run/docker.sock';

function dockerdPids(): number[] {
  const pids: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (fs.readFileSync(`/proc/${entry}/comm`, 'utf8').trim() === 'dockerd') pids.push(Number(entry));
    } catch {
      /* gone */
    }
  }
  return pids;
}

async function dockerAnswers(): Promise<boolean> {
  return docker
    .ping()
    .then(() => true)
    .catch(() => false);
}

/** Stops dockerd (SIGTERM, as an init system would) and waits until it and its socket are gone. */
export async function stopDockerd(): Promise<void> {
  const pids = dockerdPids();
  if (!pids.length) throw new Error('dockerd is not running');
  for (const pid of pids) process.kill(pid, 'SIGTERM');
  await waitFor('dockerd to exit and its socket to go away', async () => dockerdPids().length === 0 && !fs.existsSync(SOCKET), 90_000, 250);
}

/** Starts dockerd the way scripts/services.sh does and waits until it answers. */
export async function startDockerd(): Promise<void> {
  if (!dockerdPids().length) {
    fs.rmSync('/var/run/docker.pid', { force: true });
    const log = fs.openSync('/var/log/dockerd.log', 'a');
    const child = spawn('setsid', ['dockerd', '--default-address-pool', 'base=172.16.0.0/12,size=24'], { detached: true, stdio: ['ignore', log, log] });
    child.unref();
    fs.closeSync(log);
  }
  await waitFor('dockerd to answer', dockerAnswers, 90_000, 250);
}

/** Makes sure dockerd runs (after a test that stopped it failed half-way). */
export async function ensureDockerd(): Promise<void> {
  if (await dockerAnswers()) return;
  await startDockerd();
}
