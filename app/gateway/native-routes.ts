import type { AppDeps } from '../deps.js';
import { serviceEndpointsOf, serviceHostLabel } from '../../lib/preview-domain.js';
import { stateChangeListeners } from '../../lib/workspaces.js';
import { validRoute, type NativeRoute } from './nginx-config.js';

/**
 * how often the serving workspaces are read for the native proxy: a workspace that stops, starts
 * or switches to a new commit's containers is routed anew within this (plus the reload's
 * 50 ms); until then a request to a container that is gone falls back to Berth's Node gateway
 */
export const ROUTE_POLL_MS = 250;

/** the states in which the Node gateway proxies (gateway.ts proxiable): the same here */
const SERVING = ['running', 'queued', 'building', 'starting'] as const;

type Row = {
  id: string;
  slug: string;
  previewHost: string | null;
  previewPort: number | null;
  previewPrivate: boolean;
  idleTimeoutSec: number;
  serviceEndpoints: unknown;
};

/** A running workspace's hosts as the native proxy serves them: its preview and its services'. */
export function routesOf(ws: Row): NativeRoute[] {
  if (!ws.previewHost) return [];
  const out: NativeRoute[] = [];
  if (ws.previewPort) out.push({ label: ws.slug, address: ws.previewHost, port: ws.previewPort, private: ws.previewPrivate, workspaceId: ws.id });
  for (const e of serviceEndpointsOf(ws.serviceEndpoints)) {
    out.push({ label: serviceHostLabel(e.label, ws), address: e.host, port: e.port, private: ws.previewPrivate, workspaceId: ws.id });
  }
  return out.map(validRoute).filter((r): r is NativeRoute => Boolean(r));
}

/**
 * Keeps the native proxy's routes equal to the serving workspaces in the database (one indexed
 * query every ROUTE_POLL_MS, whichever process changed them), and knows each routed host's
 * workspace for the activity log.
 */
export class NativeRouteSync {
  private timer?: NodeJS.Timeout;
  private byHost = new Map<string, { id: string; idleTimeoutSec: number }>();
  private running?: Promise<void>;
  /** a state change made in this process (the worker of `npm start`): routes follow before it goes on */
  private readonly onStateChange = () => this.refresh(true);

  /** `apply` resolves once nginx serves the routes (immediate: true) */
  constructor(
    private readonly deps: Pick<AppDeps, 'db' | 'config'>,
    private readonly apply: (routes: NativeRoute[], immediate: boolean) => Promise<void> | void,
  ) {}

  async start(): Promise<void> {
    await this.refresh();
    this.timer = setInterval(() => void this.refresh(), ROUTE_POLL_MS);
    this.timer.unref();
    stateChangeListeners.add(this.onStateChange);
  }

  /** the workspace behind a routed host name (as nginx's `$host` has it), if any */
  workspaceOf(host: string): { id: string; idleTimeoutSec: number } | undefined {
    return this.byHost.get(host);
  }

  /** reads the serving workspaces; `immediate`: a state change, which waits for nginx to have them */
  refresh(immediate = false): Promise<void> {
    if (this.running && !immediate) return this.running;
    // after any read in flight, which may have started before the change
    const next = (this.running ?? Promise.resolve()).then(() => this.read(immediate));
    const mine = next.finally(() => {
      if (this.running === mine) this.running = undefined;
    });
    this.running = mine;
    return mine;
  }

  private async read(immediate: boolean): Promise<void> {
    try {
      const rows = await this.deps.db.workspace.findMany({
        // only workspaces on this machine (issue 18): another host's containers are reached through its agent, by Berth
        where: { previewHost: { not: null }, state: { in: [...SERVING] }, OR: [{ hostId: null }, { host: { url: null } }] },
        select: { id: true, slug: true, previewHost: true, previewPort: true, previewPrivate: true, idleTimeoutSec: true, serviceEndpoints: true },
      });
      const domain = this.deps.config.BERTH_PREVIEW_DOMAIN.toLowerCase();
      const routes = rows.flatMap(routesOf).sort((a, b) => a.label.localeCompare(b.label));
      const byHost = new Map<string, { id: string; idleTimeoutSec: number }>();
      const idle = new Map(rows.map((r) => [r.id, r.idleTimeoutSec]));
      for (const r of routes) byHost.set(`${r.label}.${domain}`, { id: r.workspaceId, idleTimeoutSec: idle.get(r.workspaceId)! });
      this.byHost = byHost;
      await this.apply(routes, immediate);
    } catch {
      // PostgreSQL away: the routes stay as they were (running previews keep serving)
    }
  }

  close(): void {
    clearInterval(this.timer);
    stateChangeListeners.delete(this.onStateChange);
  }
}
