import type { AppDeps } from '../deps.js';
import { sendJson, type Handler } from '../http.js';
import { withTimeout, type ContainerReader } from './containers.js';

const CHECK_TIMEOUT_MS = 2_000;

export interface CheckResult {
  ok: boolean;
  ms: number;
  error?: string;
}

/**
 * GET /readyz for operators and load balancers: 200 when PostgreSQL, Redis and Docker all
 * answer, 503 otherwise, with each check's result and time. (/healthz only says the process
 * is up, so an orchestrator does not restart Berth because Redis is down.)
 */
export function readinessHandler(deps: AppDeps, docker: ContainerReader): Handler {
  const checks: Record<string, () => Promise<unknown>> = {
    database: () => deps.db.$queryRaw`SELECT 1`,
    // a real queue read through BullMQ's own connection: what the app needs Redis for
    redis: () => deps.queues.builds.getJobCounts('waiting'),
    docker: () => docker.ping(),
  };
  return async (req, res) => {
    if (req.url?.split('?')[0] !== '/readyz') return false;
    const entries = await Promise.all(Object.entries(checks).map(async ([name, check]) => [name, await timed(check)] as const));
    const results = Object.fromEntries(entries);
    const ok = entries.every(([, r]) => r.ok);
    const unknownVolumes = results.database?.ok ? await unknownVolumesDetail(deps) : undefined;
    sendJson(res, ok ? 200 : 503, { ok, checks: results, ...(unknownVolumes && { unknownVolumes }) });
    return true;
  };
}

/**
 * Disks of workspaces this database does not know (see the UnknownVolume model): not a reason
 * to be unready, but what an operator who just changed DATABASE_URL must hear about. A count
 * only: /readyz is public, and volume names carry branch and repository names.
 */
export async function unknownVolumesDetail(deps: Pick<AppDeps, 'db'>): Promise<{ count: number; since?: string; detail: string } | undefined> {
  try {
    const count = await withTimeout(deps.db.unknownVolume.count(), CHECK_TIMEOUT_MS, 'no answer');
    if (!count) return { count: 0, detail: 'none' };
    const first = await deps.db.unknownVolume.findFirst({ orderBy: { firstSeenAt: 'asc' }, select: { firstSeenAt: true } });
    return {
      count,
      since: first?.firstSeenAt.toISOString(),
      detail: `${count} Docker volume${count === 1 ? '' : 's'} of workspaces this database does not know: kept, never removed by Berth; the log names them`,
    };
  } catch {
    return undefined; // the database check above says what is wrong
  }
}

async function timed(check: () => Promise<unknown>): Promise<CheckResult> {
  const started = performance.now();
  try {
    await withTimeout(check(), CHECK_TIMEOUT_MS, 'no answer');
    return { ok: true, ms: Math.round(performance.now() - started) };
  } catch (err) {
    // the message of a connection error names host and port, never credentials
    return { ok: false, ms: Math.round(performance.now() - started), error: (err as Error).message.split('\n')[0]!.slice(0, 200) };
  }
}
