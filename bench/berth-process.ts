/**
 * One Berth (test/helpers/berth.ts: web + worker unless BERTH_ROLE=app, its own database and
 * queue prefix, the real Docker engine) in a process of its own, as `npm start` runs it, so the
 * benchmark's driver and the fake GitHub do not share its event loop or its memory.
 *
 * Started by bench/main.ts with `fork`; BENCH_BERTH holds `{ fake, env, mode }`. Mode `worker`
 * starts only the worker (as `npm run start:worker` does) against the DATABASE_URL and
 * BERTH_QUEUE_PREFIX in `env`, next to a web-only Berth in another process. Answers IPC requests
 * `{ id, type }` with `{ id, value }`:
 *   spans       every Runtime call so far: { ws, name, start, end } (epoch ms)
 *   memory      process.memoryUsage() after two forced garbage collections
 *   loop-start  / loop-stop: event-loop delay (p50/p99/max, ms) and CPU time (ms) in between
 *   close       closes Berth (its database is dropped) and exits
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import v8 from 'node:v8';
import vm from 'node:vm';
import { startTestBerth, TestOctokit, type FakeGitHubLike } from '../test/helpers/berth.js';
import { DockerRuntime } from '../worker/runtime/docker.js';
import { loadConfig } from '../lib/config.js';
import { bootInfra } from '../lib/boot.js';
import { createProbotFor } from '../lib/github-app.js';
import { startWorker } from '../worker/main.js';

interface Span {
  ws: string;
  name: string;
  start: number;
  end: number;
}

const spans: Span[] = [];

/** Wraps the Docker runtime's methods to record where a start spends its time. */
function profileRuntime() {
  const proto = DockerRuntime.prototype as unknown as Record<string, (...a: any[]) => Promise<unknown>>;
  const wrap = (method: string, describe: (args: any[]) => { ws: string; name: string }) => {
    const original = proto[method];
    if (!original) return;
    proto[method] = async function (this: unknown, ...args: any[]) {
      const start = Date.now();
      try {
        return await original.apply(this, args);
      } finally {
        try {
          spans.push({ ...describe(args), start, end: Date.now() });
        } catch {
          /* profiling never breaks Berth */
        }
      }
    };
  };
  // images are tagged berth/<slug>/<service>:<sha>: builds are found by the workspace's slug
  wrap('buildImage', ([o]) => ({ ws: String(o.tag).split('/')[1] ?? '?', name: 'buildImage' }));
  wrap('ensureDisk', ([s]) => ({ ws: s.workspaceId, name: 'ensureDisk' }));
  wrap('populateWorkspace', ([s]) => ({ ws: s.workspaceId, name: 'populateWorkspace' }));
  // a new disk's migrate and seed run in one task container (worker/jobs/start.ts runMigrateAndSeed)
  wrap('runTask', ([s, , cmd]) => ({ ws: s.workspaceId, name: /migrate\.js[\s\S]*seed\.js/.test(cmd) ? 'task:migrate+seed' : `task:${cmd}` }));
  wrap('startServices', ([s]) => ({ ws: s.workspaceId, name: 'startServices' }));
  wrap('waitHealthy', ([s, e]) => ({ ws: s.workspaceId, name: `health:${e.service}` }));
  wrap('startIde', ([s]) => ({ ws: s.workspaceId, name: 'startIde' }));
  wrap('stopServices', ([id]) => ({ ws: id, name: 'stopServices' }));
  wrap('removeTasks', ([id]) => ({ ws: id, name: 'removeTasks' }));
}

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

/** The worker alone, configured as startTestBerth configures a whole Berth. */
async function startWorkerOnly(fake: FakeGitHubLike, env: Record<string, string>) {
  const config = loadConfig({
    APP_ID: String(fake.appId),
    PRIVATE_KEY: fake.privateKey,
    WEBHOOK_SECRET: fake.webhookSecret,
    GHE_HOST: fake.host,
    GHE_PROTOCOL: 'http',
    REDIS_URL: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
    BERTH_PREVIEW_DOMAIN: 'localhost',
    BERTH_HEALTH_TIMEOUT: '60s',
    BERTH_MEMORY_LIMIT: '512m',
    LOG_LEVEL: 'error',
    ...env,
  } as NodeJS.ProcessEnv);
  const infra = await bootInfra(config, () => {});
  const worker = await startWorker({ config, db: infra.db, queues: infra.queues, probot: createProbotFor(config, TestOctokit), log: () => {} });
  return {
    port: 0,
    config,
    infra,
    async close() {
      await worker.close();
      await infra.close();
    },
  };
}

async function main() {
  const { fake, env, mode } = JSON.parse(process.env.BENCH_BERTH ?? '{}') as { fake: FakeGitHubLike; env: Record<string, string>; mode?: 'berth' | 'worker' };
  profileRuntime();
  const berth = mode === 'worker' ? await startWorkerOnly(fake, env) : await startTestBerth(fake, env);
  const loop = monitorEventLoopDelay({ resolution: 5 });
  let cpu0 = process.cpuUsage();
  let wall0 = performance.now();
  let closing = false;
  const close = async () => {
    if (closing) return;
    closing = true;
    await berth.close().catch((err) => console.error(`[berth-process] close: ${(err as Error).message}`));
  };
  process.on('disconnect', () => void close().finally(() => process.exit(0)));
  process.on('message', async (m: { id: number; type: string }) => {
    const reply = (value: unknown) => process.send?.({ id: m.id, value });
    switch (m.type) {
      case 'spans':
        return reply(spans);
      case 'memory':
        gc();
        gc();
        return reply(process.memoryUsage());
      case 'loop-start':
        loop.reset();
        loop.enable();
        cpu0 = process.cpuUsage();
        wall0 = performance.now();
        return reply(null);
      case 'loop-stop': {
        loop.disable();
        const cpu = process.cpuUsage(cpu0);
        return reply({ p50: loop.percentile(50) / 1e6, p99: loop.percentile(99) / 1e6, max: loop.max / 1e6, cpu: (cpu.user + cpu.system) / 1000, wall: performance.now() - wall0 });
      }
      case 'close':
        await close();
        reply(null);
        setTimeout(() => process.exit(0), 100);
        return;
    }
  });
  process.send?.({
    type: 'ready',
    port: berth.port,
    native: 'front' in berth ? (berth.front as { native: boolean }).native : false,
    prefix: berth.config.BERTH_QUEUE_PREFIX,
    databaseUrl: berth.infra.databaseUrl,
    redisUrl: berth.infra.redisUrl,
    pid: process.pid,
  });
}

main().catch((err) => {
  console.error('[berth-process]', err);
  process.exit(1);
});
