import Docker from 'dockerode';

/**
 * Read-only view of the workspace containers for the dashboard. The app process may read
 * Docker but never changes it: starting and stopping is the worker's job (through the queue),
 * so a web request can never race a job on the same containers.
 *
 * Objects are found by the labels the worker's runtime puts on everything it creates
 * (worker/runtime/docker.ts LABELS); repeated here because app/ must not import worker/.
 */
const LABEL_WORKSPACE = 'berth.workspace';
const LABEL_SERVICE = 'berth.service';
const LABEL_ROLE = 'berth.role';

/** How long a page waits for Docker before it shows what the database knows instead. */
const DOCKER_TIMEOUT_MS = 2_000;

export interface ContainerView {
  name: string;
  service: string | null;
  /** `service` (long-running) or `task` (migrate, seed) */
  role: string | null;
  /** docker's state: running, exited, created, restarting, dead, ... */
  state: string;
  /** docker's human status, e.g. "Up 5 minutes" or "Exited (1) 2 minutes ago" */
  status: string;
  image: string;
  createdAt: Date;
}

export interface ContainerReader {
  ping(): Promise<void>;
  /** the workspace's containers, or null when Docker cannot be asked right now */
  containersOf(workspaceId: string): Promise<ContainerView[] | null>;
}

export class DockerContainerReader implements ContainerReader {
  constructor(private docker: Docker = new Docker()) {}

  async ping(): Promise<void> {
    await withTimeout(this.docker.ping(), DOCKER_TIMEOUT_MS, 'Docker did not answer');
  }

  async containersOf(workspaceId: string): Promise<ContainerView[] | null> {
    try {
      const list = await withTimeout(
        this.docker.listContainers({ all: true, filters: { label: [`${LABEL_WORKSPACE}=${workspaceId}`] } }),
        DOCKER_TIMEOUT_MS,
        'Docker did not answer',
      );
      return list.map((c) => ({
        name: (c.Names?.[0] ?? c.Id.slice(0, 12)).replace(/^\//, ''),
        service: c.Labels?.[LABEL_SERVICE] ?? null,
        role: c.Labels?.[LABEL_ROLE] ?? null,
        state: c.State,
        status: c.Status,
        image: c.Image,
        createdAt: new Date(c.Created * 1000),
      }));
    } catch {
      return null;
    }
  }
}

export function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${message} within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
