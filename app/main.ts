import { run } from 'probot';
import { loadConfig, type BerthConfig } from '../lib/config.js';
import { ConfigurationError } from '../lib/errors.js';
import { bootInfra, loadDotEnv } from '../lib/boot.js';
import { createProbotFor, type OctokitClass } from '../lib/github-app.js';
import { attachLogger, createLogger, loggerSettingsFromEnv, sentences, type Logger } from '../lib/log.js';
import { closeOnSignals, runAsMain } from '../lib/process.js';
import { createBerthServer } from './server.js';
import { SshServer } from './ssh/server.js';
import { openFrontDoor } from './gateway/native-front.js';
import { DockerWorkspaceAccess } from '../worker/runtime/docker-access.js';
import { RoutedWorkspaceAccess } from '../lib/hosts/remote-access.js';

/**
 * `npm start`: the web app (webhooks, gateway, dashboard) and, unless BERTH_ROLE=app, the
 * worker in the same process. Without a registered GitHub App it serves Probot's setup page,
 * which registers the app from app.yml and writes its credentials to .env.
 */
export async function startBerth(config: BerthConfig, opts: { Octokit?: OctokitClass; log?: (m: string) => void; logger?: Logger } = {}) {
  // one logger for Probot, the web and the worker (lib/log.ts)
  const logger = opts.logger ?? createLogger(loggerSettingsFromEnv(process.env, config.LOG_LEVEL));
  const log = opts.log ?? sentences(logger);
  const infra = await bootInfra(config, log);
  attachLogger(infra.db, logger);
  const probot = createProbotFor(config, opts.Octokit, logger);
  const deps = { config, db: infra.db, queues: infra.webQueues };
  // the web's one door to the workspaces' containers (the composition root may name the runtime)
  // (issue 18) routed to the host that holds each workspace: its agent, or this machine's engine
  const workspaces = new RoutedWorkspaceAccess(new DockerWorkspaceAccess(), infra.db, config.BERTH_HOST_SECRET, config.BERTH_ROLE === 'all' ? config.BERTH_HOST_NAME : undefined);
  const web = await createBerthServer(deps, probot, [], { workspaces });
  let worker: { close(): Promise<void> } | undefined;
  if (config.BERTH_ROLE === 'all') {
    // The composition root is the only place where app and worker meet.
    const { startWorker } = await import('../worker/main.js');
    worker = await startWorker({ config, db: infra.db, queues: infra.queues, probot, log, logger });
  }
  // nginx in front when it is installed (BERTH_NATIVE_PROXY), else Berth's server on PORT itself
  const front = await openFrontDoor(deps, web, log);
  const port = front.port;
  log(`listening on port ${port}: webhooks at ${config.berthUrl}/api/github/webhooks, previews at http://<slug>.${config.BERTH_PREVIEW_DOMAIN}:${port}/`);
  // SSH into workspaces (desktop IDEs) belongs to the web side: it needs sign-ins and GitHub
  let ssh: SshServer | undefined;
  if (config.BERTH_SSH_PORT) {
    ssh = new SshServer(deps, probot, logger.child({ component: 'ssh' }), { git: web.git, berthPort: port, workspaces });
    try {
      await ssh.listen(config.BERTH_SSH_PORT, config.HOST ?? '0.0.0.0');
    } catch (err) {
      await worker?.close();
      await front.close();
      await web.close();
      await infra.close();
      throw new ConfigurationError(`BERTH_SSH_PORT: cannot listen on port ${config.BERTH_SSH_PORT} (${(err as Error).message}); choose another port, or off`);
    }
    log(`SSH on port ${config.BERTH_SSH_PORT} (host key ${ssh.fingerprint}): ssh -p ${config.BERTH_SSH_PORT} <slug>@${new URL(config.berthUrl).hostname}`);
  }
  return {
    port,
    web,
    infra,
    ssh,
    front,
    async close() {
      await ssh?.close();
      await worker?.close();
      await front.close();
      await web.close();
      await infra.close();
    },
  };
}

async function main() {
  loadDotEnv();
  const config = loadConfig();
  if (!config.appConfigured) {
    console.log('[berth] APP_ID and PRIVATE_KEY are not set: serving the GitHub App setup page (register Berth from app.yml).');
    await run(() => {}, { env: { ...process.env, PORT: String(config.PORT) } as never });
    return;
  }
  const berth = await startBerth(config);
  closeOnSignals(() => berth.close());
}

runAsMain(import.meta.url, main);
