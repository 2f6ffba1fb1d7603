import type { Endpoint, WorkspaceAccess, WorkspaceShell } from '../../lib/workspace-access.js';

const CACHE_MS = 2_000;

export type IdeEndpoint = Endpoint;

/**
 * The IDE's view of a workspace's containers, through the web's door to the engine
 * (lib/workspace-access.ts). Unlike the dashboard, the IDE does act on the containers: a
 * terminal is a program started in the workspace's main container, which only a live browser
 * connection can own, so it cannot go through the worker's queue.
 */
export class IdeContainers {
  private endpoints = new Map<string, { at: number; value: IdeEndpoint | null }>();

  constructor(readonly access: WorkspaceAccess) {}

  /** where the workspace's code-server answers, or null when it is not running */
  async codeServer(workspaceId: string): Promise<IdeEndpoint | null> {
    const hit = this.endpoints.get(workspaceId);
    if (hit && Date.now() - hit.at < CACHE_MS) return hit.value;
    const value = await this.access.ideEndpoint(workspaceId);
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
  mainContainer(workspaceId: string, preferredService: string | null): Promise<WorkspaceShell | null> {
    return this.access.mainContainer(workspaceId, preferredService);
  }
}
