import type { WorkspaceAccess } from '../../lib/workspace-access.js';

export type { ContainerView } from '../../lib/workspace-access.js';

/**
 * What the dashboard reads of the workspace containers, through the web's door to the engine
 * (lib/workspace-access.ts): read-only. Starting and stopping is the worker's job (through the
 * queue), so a web request can never race a job on the same containers. `containersOf` answers
 * null when the engine cannot be asked within a couple of seconds: the page then shows what
 * the database knows instead.
 */
export type ContainerReader = Pick<WorkspaceAccess, 'ping' | 'containersOf'>;

export function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${message} within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
