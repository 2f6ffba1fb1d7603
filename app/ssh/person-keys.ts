import { LRUCache } from 'lru-cache';
import type { Probot } from 'probot';
import type { PrismaClient } from '../../lib/db/client.js';

type Octokit = Awaited<ReturnType<Probot['auth']>>;

/** Long enough that a burst of connections (VS Code opens several) asks GitHub once, short enough that a key removed on GitHub stops working within a minute. */
export const SSH_KEYS_TTL_MS = 60_000;
/** The people looked at per connection: the most recently signed-in first. */
const MAX_PEOPLE = 1_000;
const CONCURRENCY = 8;
const REQUEST_TIMEOUT_MS = 10_000;

export interface OfferedKey {
  /** the public key blob the client offered (SSH wire format) */
  data: Buffer;
}

/**
 * Who is at the other end of an SSH connection: the person among those who signed in to Berth
 * at least once (the User table) whose GitHub account lists the offered public key
 * (`GET /users/{login}/keys`). The SSH user name is the workspace's slug, so the key alone
 * names the person; only people Berth knows are looked at, so a stranger's key costs no more
 * than the known people's (cached) key lists. Each person's keys are cached for
 * SSH_KEYS_TTL_MS; a failed look-up is not cached, so an outage of GitHub does not outlive it.
 */
export class PersonKeys {
  private readonly keys: LRUCache<string, string[], Octokit>;

  constructor(
    private readonly db: PrismaClient,
    opts: { ttlMs?: number } = {},
  ) {
    this.keys = new LRUCache({
      max: 10_000,
      ttl: opts.ttlMs ?? SSH_KEYS_TTL_MS,
      allowStale: false,
      fetchMethod: async (login, _stale, { context }) => fetchKeys(context, login),
    });
  }

  /** the login whose GitHub keys include `key`, or null */
  async personOf(octokit: Octokit, key: OfferedKey): Promise<string | null> {
    const wanted = key.data.toString('base64');
    const people = await this.db.user.findMany({ select: { login: true }, orderBy: { updatedAt: 'desc' }, take: MAX_PEOPLE });
    let found: string | null = null;
    let next = 0;
    const worker = async () => {
      while (!found && next < people.length) {
        const { login } = people[next++]!;
        const list = await this.keys.fetch(login.toLowerCase(), { context: octokit }).catch(() => undefined);
        if (list?.includes(wanted)) found = login;
      }
    };
    await Promise.all(Array.from({ length: Math.min(CONCURRENCY, people.length) }, worker));
    return found;
  }
}

/** The base64 blobs of a user's public keys (`ssh-ed25519 AAAA…` → `AAAA…`); none for an unknown login. */
async function fetchKeys(octokit: Octokit, login: string): Promise<string[]> {
  try {
    const { data } = await octokit.request('GET /users/{username}/keys', {
      username: login,
      per_page: 100,
      request: { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) },
    });
    return data.map((k) => k.key.trim().split(/\s+/)[1] ?? '').filter(Boolean);
  } catch (err) {
    if ((err as { status?: number }).status === 404) return [];
    throw err;
  }
}
