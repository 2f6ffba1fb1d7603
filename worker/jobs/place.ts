import type { Job } from 'bullmq';
import { parse } from 'yaml';
import type { WorkerDeps } from '../deps.js';
import { buildDedupId, type BuildJob } from '../../lib/queue.js';
import { CONFIG_PATH } from '../../lib/repo-config.js';
import { LOCAL_HOST, WAITING_FOR_HOST } from '../../lib/hosts/health.js';
import { placeWorkspace } from '../../lib/hosts/placement.js';
import { hostRooms } from '../../lib/hosts/registry.js';
import type { Repository, Workspace } from '../../lib/db/client.js';

/** how often a workspace that no host can take asks again */
export const PLACE_RETRY_MS = 5_000;

/**
 * The first build of a workspace with no host (issue 18): any worker picks the host with the most
 * room that has the labels berth.yml asks for (lib/hosts/placement.ts), pins the workspace there
 * (its disk will be made there and stay) and hands the build to that host's queue. No host can
 * take it: the workspace stays queued with the reason (check run and comment say it) and asks
 * again every PLACE_RETRY_MS, so it waits in line instead of overloading a host.
 */
export async function placeJob(deps: WorkerDeps, job: Job<BuildJob>): Promise<void> {
  const { db, queues } = deps;
  // a push from now on collapses into the job this one hands on, or into the retry below
  await queues.placement.removeDeduplicationKey(buildDedupId(job.data.workspaceId));
  const ws = await db.workspace.findUnique({ where: { id: job.data.workspaceId }, include: { repository: true } });
  if (!ws || ws.state === 'deleted') return;
  if (!ws.hostId && hasDisk(ws)) {
    // a workspace from before hosts: its disk is on the host `local`
    const local = await db.host.findUnique({ where: { name: LOCAL_HOST }, select: { id: true } });
    if (local) await db.workspace.updateMany({ where: { id: ws.id, hostId: null }, data: { hostId: local.id } });
    else return void (await queues.forHost(LOCAL_HOST).builds.add('build', job.data, { deduplication: { id: buildDedupId(ws.id) } }));
  } else if (!ws.hostId) {
    const began = Date.now();
    const labels = await hostLabelsAt(deps, ws, job.data.buildId);
    const read = Date.now();
    const placement = placeWorkspace(await hostRooms(db), { labels });
    // where a slow placement spends its time (BullMQ's job log; docs/benchmarks.md)
    await job.log(`labels read from GitHub in ${read - began} ms, hosts weighed in ${Date.now() - read} ms`).catch(() => 0);
    if (!placement.host) {
      const reason = `${WAITING_FOR_HOST}: ${placement.reason}`;
      if (ws.stateReason !== reason) {
        await db.workspace.updateMany({ where: { id: ws.id, hostId: null, state: 'queued' }, data: { stateReason: reason } });
        await queues.enqueueReport({ workspaceId: ws.id, buildId: job.data.buildId });
        deps.log(`workspace ${ws.id} (${ws.branch}) waits for a host: ${placement.reason}`);
      }
      await queues.placement.add('place', job.data, { delay: PLACE_RETRY_MS, deduplication: { id: buildDedupId(ws.id) } });
      return;
    }
    // conditional: of two workers placing at once, the first pin holds
    await db.workspace.updateMany({ where: { id: ws.id, hostId: null }, data: { hostId: placement.host.id } });
    deps.log(`workspace ${ws.id} (${ws.branch}) placed on host ${placement.host.name}${labels.length ? ` (labels ${labels.join(', ')})` : ''}`);
  }
  await queues.enqueueBuild(job.data);
}

/** a disk was made for it (it ran, or was seeded): it cannot go anywhere else by placement */
const hasDisk = (ws: Workspace) => Boolean(ws.runningSha || ws.seededAt);

/**
 * berth.yml's `workspace.host_labels` at the build's commit, read from GitHub (the clone happens on
 * the host, after placement). Anything unreadable (no berth.yml, invalid YAML, GitHub away) counts
 * as no labels: the build reads the file again and reports what is wrong with its line.
 */
async function hostLabelsAt(deps: WorkerDeps, ws: Workspace & { repository: Repository }, buildId: string): Promise<string[]> {
  try {
    const build = await deps.db.build.findUnique({ where: { id: buildId }, select: { sha: true } });
    const octokit = await deps.probot.auth(Number(ws.repository.installationId));
    const { data } = await octokit.rest.repos.getContent({ owner: ws.repository.owner, repo: ws.repository.name, path: CONFIG_PATH, ref: build?.sha ?? ws.headSha });
    if (Array.isArray(data) || data.type !== 'file' || !('content' in data)) return [];
    const doc = parse(Buffer.from(data.content, 'base64').toString('utf8')) as { workspace?: { host_labels?: unknown } } | null;
    const labels = doc?.workspace?.host_labels;
    return Array.isArray(labels) ? [...new Set(labels.filter((l): l is string => typeof l === 'string').map((l) => l.toLowerCase()))] : [];
  } catch {
    return [];
  }
}
