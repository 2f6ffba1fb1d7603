import Docker from 'dockerode';

/**
 * The IDE's view of a workspace's containers, found by the labels the worker's runtime puts
 * on everything it creates (worker/runtime/docker.ts LABELS; repeated here because app/ must
 * not import worker/). Unlike the dashboard, the IDE does act on Docker: a terminal is a
 * `docker exec` in the workspace's main container, which only a live browser connection can
 * own, so it cannot go through the worker's queue.
 */
const LABEL_WORKSPACE = 'berth.workspace';
const LABEL_SERVICE = 'berth.service';
const LABEL_ROLE = 'berth.role';
/** the role of the code-server container the worker starts next to the services */
export const IDE_ROLE = 'ide';
/** on a person's own code-server container (app/ide/person-ide.ts): their login */
export const LABEL_PERSON = 'berth.person';
/** where code-server listens inside its container (only on the workspace network) */
export const CODE_SERVER_PORT = 13337;

const WORKSPACE_DIR = '/workspace';
const CACHE_MS = 2_000;

export interface IdeEndpoint {
  host: string;
  port: number;
}

export class IdeContainers {
  private endpoints = new Map<string, { at: number; value: IdeEndpoint | null }>();

  constructor(readonly docker: Docker = new Docker()) {}

  /** where the workspace's code-server answers, or null when it is not running */
  async codeServer(workspaceId: string): Promise<IdeEndpoint | null> {
    const hit = this.endpoints.get(workspaceId);
    if (hit && Date.now() - hit.at < CACHE_MS) return hit.value;
    // the workspace's own, not a person's copy of it
    const c = (await this.docker.listContainers({ filters: { label: [`${LABEL_WORKSPACE}=${workspaceId}`, `${LABEL_ROLE}=${IDE_ROLE}`], status: ['running'] } })).find((x) => !x.Labels?.[LABEL_PERSON]);
    const ip = c ? Object.values(c.NetworkSettings?.Networks ?? {}).find((n) => n.IPAddress)?.IPAddress : undefined;
    const value = ip ? { host: ip, port: CODE_SERVER_PORT } : null;
    this.endpoints.set(workspaceId, { at: Date.now(), value });
    return value;
  }

  forget(workspaceId: string) {
    this.endpoints.delete(workspaceId);
  }

  /**
   * The running container a terminal opens in: the preview service's when it has the
   * workspace disk, else any service that has it.
   */
  async mainContainer(workspaceId: string, preferredService: string | null): Promise<Docker.Container | null> {
    const list = await this.docker.listContainers({ filters: { label: [`${LABEL_WORKSPACE}=${workspaceId}`, `${LABEL_ROLE}=service`], status: ['running'] } });
    const withDisk = list.filter((c) => c.Mounts?.some((m) => m.Destination === WORKSPACE_DIR));
    const pick = withDisk.find((c) => c.Labels?.[LABEL_SERVICE] === preferredService) ?? withDisk[0];
    return pick ? this.docker.getContainer(pick.Id) : null;
  }
}
