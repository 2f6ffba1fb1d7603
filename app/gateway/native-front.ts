import net from 'node:net';
import path from 'node:path';
import type { AppDeps } from '../deps.js';
import type { BerthServer } from '../server.js';
import { ActivityLogTail } from './native-activity.js';
import { findNginx, NativeProxy } from './native-proxy.js';
import { NativeRouteSync } from './native-routes.js';

export interface FrontDoor {
  /** the port everyone uses: previews, IDEs, the dashboard, webhooks */
  port: number;
  /** nginx serves running workspaces' hosts; false: Berth's Node server listens on `port` itself */
  native: boolean;
  close(): Promise<void>;
}

/**
 * Opens Berth's port. With BERTH_NATIVE_PROXY=on and nginx installed, nginx
 * listens there (app/gateway/native-proxy.ts): running workspaces' hosts go straight to their
 * containers, everything else to Berth's Node server on a loopback port. Without nginx, or
 * when it cannot start, Berth's Node server listens there itself, as before, and the log says
 * why once.
 */
export async function openFrontDoor(deps: Pick<AppDeps, 'db' | 'config'>, web: BerthServer, log: (m: string) => void): Promise<FrontDoor> {
  const { config } = deps;
  const host = config.HOST ?? '0.0.0.0';
  const direct = async (): Promise<FrontDoor> => {
    const port = await listen(web.server, config.PORT, host);
    return { port, native: false, close: async () => {} };
  };
  if (!config.BERTH_NATIVE_PROXY) return direct();
  const binary = findNginx();
  if (!binary) {
    log('native proxy off: nginx is not installed (apt-get install nginx-light); previews are served by Berth itself (slower).');
    return direct();
  }
  if (!net.isIP(host)) {
    log(`native proxy off: HOST ${host} is not an IP address nginx can listen on; previews are served by Berth itself.`);
    return direct();
  }
  const berthPort = await listen(web.server, 0, '127.0.0.1');
  const port = config.PORT || (await freePort(host));
  let proxy: NativeProxy;
  try {
    proxy = await NativeProxy.start({
      binary,
      dir: path.resolve(config.BERTH_DATA_DIR, 'native-proxy', String(port)),
      listenHost: host,
      listenPort: port,
      berthPort,
      previewDomain: config.BERTH_PREVIEW_DOMAIN,
      berthHostname: () => hostnameOf(config.berthUrl),
      onExit: log,
    });
  } catch (err) {
    log(`native proxy off: ${(err as Error).message}; previews are served by Berth itself.`);
    await new Promise<void>((r) => web.server.close(() => r()));
    return direct();
  }
  web.gateway.behindNativeProxy = true;
  const routes = new NativeRouteSync(deps, (r, immediate) => proxy.setRoutes(r, immediate));
  const activity = new ActivityLogTail(
    proxy.activityLog,
    (h, at) => {
      const ws = routes.workspaceOf(h);
      if (ws) web.gateway.recordActivity(ws, at);
    },
    () => proxy.reopenLogs(),
  );
  await routes.start();
  await activity.start();
  log(`native proxy (nginx) on port ${port}: running previews are served by it, everything else by Berth`);
  return {
    port,
    native: true,
    async close() {
      routes.close();
      await activity.tick();
      activity.close();
      await proxy.close();
    },
  };
}

function listen(server: net.Server, port: number, host: string): Promise<number> {
  return new Promise((ok, fail) => {
    server.once('error', fail);
    server.listen(port, host, () => {
      server.removeListener('error', fail);
      const a = server.address();
      ok(typeof a === 'object' && a ? a.port : port);
    });
  });
}

/** a port free now on `host` (PORT=0: tests, several Berths on one machine) */
async function freePort(host: string): Promise<number> {
  const probe = net.createServer();
  const port = await listen(probe, 0, host);
  await new Promise((r) => probe.close(r));
  return port;
}

function hostnameOf(url: string): string {
  return new URL(url).hostname.replace(/^\[|\]$/g, '').toLowerCase();
}
