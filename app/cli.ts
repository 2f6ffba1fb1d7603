import { loadConfig } from '../lib/config.js';
import { loadDotEnv } from '../lib/boot.js';
import { createPrisma, type PrismaClient } from '../lib/db/client.js';
import { portOpen } from '../lib/db/embedded.js';
import { ConfigurationError } from '../lib/errors.js';
import { isReachable, sinceText } from '../lib/hosts/health.js';
import { hostRooms, setDraining } from '../lib/hosts/registry.js';
import { runAsMain } from '../lib/process.js';

/** the embedded PostgreSQL of `npm start` without DATABASE_URL (lib/db/embedded.ts) */
const EMBEDDED_URL = 'postgresql://berth:berth@127.0.0.1:54329/berth';

const USAGE = `usage: npm run berth -- <command>

  hosts                    every host: health, draining, running workspaces, labels
  hosts drain <name>       place no new workspace on host <name> (its workspaces stay)
  hosts undrain <name>     place new workspaces there again`;

/**
 * `npm run berth -- hosts drain <name>`: Berth's administration from a shell (issue 18), with the
 * same DATABASE_URL as Berth (.env is read). Prints what it did; exits 2 on a usage error.
 */
export async function runCli(args: string[], db: PrismaClient, out: (line: string) => void): Promise<number> {
  const [noun, verb, name] = args;
  if (noun !== 'hosts' || (verb && !['drain', 'undrain', 'list'].includes(verb)) || (verb && verb !== 'list' && !name)) {
    out(USAGE);
    return 2;
  }
  if (!verb || verb === 'list') {
    const hosts = await hostRooms(db);
    if (!hosts.length) out('no host has registered yet: start a worker (npm run start:worker, or npm start)');
    for (const h of hosts.sort((a, b) => a.name.localeCompare(b.name))) {
      const health = isReachable(h) ? 'healthy' : 'UNREACHABLE';
      out(`${h.name}\t${health}${h.draining ? ', draining' : ''}\t${h.running}/${h.maxRunning} running\tlabels: ${h.labels.join(',') || '-'}\tlast heartbeat ${sinceText(h.lastHeartbeatAt)}`);
    }
    return 0;
  }
  const draining = verb === 'drain';
  if (!(await setDraining(db, name!, draining))) {
    const known = (await db.host.findMany({ select: { name: true } })).map((h) => h.name);
    out(`there is no host named ${name}${known.length ? ` (hosts: ${known.join(', ')})` : ''}`);
    return 1;
  }
  out(draining ? `host ${name} is draining: no new workspace is placed there; the ones it holds stay` : `host ${name} takes new workspaces again`);
  return 0;
}

async function main() {
  loadDotEnv();
  const config = loadConfig();
  const url = config.DATABASE_URL ?? ((await portOpen(54329)) ? EMBEDDED_URL : undefined);
  if (!url) throw new ConfigurationError('DATABASE_URL is not set and no embedded PostgreSQL of Berth runs here: run this where Berth runs, with its DATABASE_URL');
  const db = createPrisma(url);
  try {
    process.exitCode = await runCli(process.argv.slice(2), db, (line) => console.log(line));
  } finally {
    await db.$disconnect();
  }
}

runAsMain(import.meta.url, main);
