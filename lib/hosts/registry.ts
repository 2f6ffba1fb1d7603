import { statfs } from 'node:fs/promises';
import { freemem, totalmem } from 'node:os';
import type { PrismaClient } from '../db/client.js';
import type { HostRouter } from '../queue.js';
import { HOST_STALE_MS, LOCAL_HOST } from './health.js';
import type { HostRoom } from './placement.js';

/**
 * The hosts table (issue 18): each worker registers its host at start and writes a heartbeat with
 * its capacity every few seconds (worker/host-heartbeat.ts); placement, the hosts page and the
 * routing of jobs read it here.
 */
export interface HostIdentity {
  name: string;
  url: string | undefined;
  labels: string[];
  maxRunning: number;
}

export interface Capacity {
  memoryTotal: number;
  memoryFree: number;
  diskFree: number;
}

/**
 * What the machine has free. Memory: the kernel's available memory (os.freemem). Disk: the file
 * system of the engine's data folder when the worker can see it (the same machine), else the root.
 */
export async function measureCapacity(dataRoot = '/var/lib/docker'): Promise<Capacity> {
  const fs = await statfs(dataRoot).catch(() => statfs('/'));
  return { memoryTotal: totalmem(), memoryFree: freemem(), diskFree: Number(fs.bavail) * Number(fs.bsize) };
}

/** registers (or takes back) the host row and writes the first heartbeat; returns the row's id */
export async function registerHost(db: PrismaClient, me: HostIdentity, capacity: Capacity): Promise<string> {
  const data = {
    url: me.url ?? null,
    labels: me.labels,
    maxRunning: me.maxRunning,
    memoryTotal: BigInt(capacity.memoryTotal),
    memoryFree: BigInt(capacity.memoryFree),
    diskFree: BigInt(capacity.diskFree),
    lastHeartbeatAt: new Date(),
    startedAt: new Date(),
  };
  const row = await db.host.upsert({ where: { name: me.name }, create: { name: me.name, ...data }, update: data, select: { id: true } });
  return row.id;
}

/** one heartbeat; returns whether the host had been seen as unreachable (it is back now) */
export async function heartbeat(db: PrismaClient, hostId: string, capacity: Capacity): Promise<boolean> {
  const before = await db.host.findUnique({ where: { id: hostId }, select: { unreachableSince: true } });
  await db.host.update({
    where: { id: hostId },
    data: { lastHeartbeatAt: new Date(), unreachableSince: null, memoryTotal: BigInt(capacity.memoryTotal), memoryFree: BigInt(capacity.memoryFree), diskFree: BigInt(capacity.diskFree) },
  });
  return Boolean(before?.unreachableSince);
}

/**
 * Hosts whose heartbeat went stale since anyone last looked: marked once (so their workspaces'
 * comments and check runs are refreshed once, by whichever worker noticed first).
 */
export async function markNewlyUnreachable(db: PrismaClient, now = new Date()): Promise<Array<{ id: string; name: string }>> {
  const stale = new Date(now.getTime() - HOST_STALE_MS);
  const hosts = await db.host.findMany({ where: { lastHeartbeatAt: { lt: stale }, unreachableSince: null }, select: { id: true, name: true } });
  const marked: Array<{ id: string; name: string }> = [];
  for (const h of hosts) {
    // conditional: of two workers noticing at once, one marks it
    const { count } = await db.host.updateMany({ where: { id: h.id, unreachableSince: null, lastHeartbeatAt: { lt: stale } }, data: { unreachableSince: now } });
    if (count) marked.push(h);
  }
  return marked;
}

/** every host with what placement needs: its running and starting workspaces counted now */
export async function hostRooms(db: PrismaClient): Promise<HostRoom[]> {
  const [hosts, counts] = await Promise.all([
    db.host.findMany(),
    db.workspace.groupBy({ by: ['hostId'], where: { state: { in: ['running', 'starting'] } }, _count: { _all: true } }),
  ]);
  const local = hosts.find((h) => h.name === LOCAL_HOST);
  const running = (hostId: string) => counts.filter((c) => c.hostId === hostId || (c.hostId === null && hostId === local?.id)).reduce((n, c) => n + c._count._all, 0);
  return hosts.map((h) => ({
    id: h.id,
    name: h.name,
    labels: h.labels,
    draining: h.draining,
    lastHeartbeatAt: h.lastHeartbeatAt,
    maxRunning: h.maxRunning,
    running: running(h.id),
    memoryFree: Number(h.memoryFree),
    diskFree: Number(h.diskFree),
  }));
}

/** `berth hosts drain <name>` and the hosts page: nothing new is placed on a draining host */
export async function setDraining(db: PrismaClient, name: string, draining: boolean): Promise<boolean> {
  const { count } = await db.host.updateMany({ where: { name }, data: { draining } });
  return count > 0;
}

/**
 * The workspaces of one host, as a Prisma filter: the host `local` also owns the workspaces that
 * have no host (from before hosts, or not placed yet: nothing of theirs is anywhere else).
 */
export function onHost(hostId: string, hostName: string) {
  return hostName === LOCAL_HOST ? { OR: [{ hostId }, { hostId: null }] } : { hostId };
}

/** the job router of lib/queue.ts: a workspace's jobs go to its host's queues */
export function hostRouter(db: PrismaClient): HostRouter {
  return async (workspaceId) => {
    const ws = await db.workspace.findUnique({ where: { id: workspaceId }, select: { hostId: true, host: { select: { name: true } } } });
    if (!ws) return LOCAL_HOST; // a job for a workspace that is gone does nothing anywhere
    return ws.host?.name ?? null;
  };
}
