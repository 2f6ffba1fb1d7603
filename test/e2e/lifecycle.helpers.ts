/**
 * Helpers of the workspace lifecycle end-to-end tests (lifecycle*.test.ts): look at what the
 * Docker engine really runs and read a workspace's disk. (A test that restarts the engine
 * runs its own: test/helpers/private-dockerd.ts.)
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import { promisify } from 'node:util';
import Dockerode from 'dockerode';
import { dockerNames, LABELS } from '../../worker/runtime/docker.js';

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
