import { LRUCache } from 'lru-cache';

/** What every workspace host needs of its workspace: the state page, the sign-in gate. */
export const HOST_WORKSPACE_FIELDS = {
  id: true,
  slug: true,
  branch: true,
  state: true,
  stateReason: true,
  previewHost: true,
  repository: { select: { owner: true, name: true, installationId: true, fullName: true } },
} as const;

/**
 * Workspaces by slug for the gateways. A row the gateway proxies with (`reuse`) is kept for a
 * quarter second, which saves a query per request under load; any other row (starting,
 * stopped: a waiting page) is looked up again on the next request, so the app is proxied as
 * soon as the workspace runs. Requests that arrive together share one query. Bounded, because
 * anyone can send requests for made-up hosts (those misses are kept too). While the database
 * does not answer, the last row is used.
 */
export class WorkspaceLookup<T extends object> {
  private readonly cache: LRUCache<string, { row: T | null }>;

  constructor(
    load: (slug: string) => Promise<T | null>,
    reuse: (row: T) => boolean,
    opts: { ttlMs?: number; max?: number } = {},
  ) {
    this.cache = new LRUCache<string, { row: T | null }>({
      max: opts.max ?? 10_000,
      ttl: opts.ttlMs ?? 250,
      // kept when a lookup fails: see get()
      noDeleteOnFetchRejection: true,
      fetchMethod: async (slug, _stale, { options }) => {
        const row = (await load(slug)) as T | null;
        if (row && !reuse(row)) options.ttl = 1; // shared by the requests waiting now, then gone
        return { row };
      },
    });
  }

  /** `fresh`: skip the cached row (the caller waits for a change). */
  async get(slug: string, opts: { fresh?: boolean } = {}): Promise<T | null> {
    try {
      const entry = await this.cache.fetch(slug, { forceRefresh: opts.fresh ?? false });
      return entry?.row ?? null;
    } catch (err) {
      // PostgreSQL restarting: keep proxying with the last row rather than take every running
      // preview down with it; a workspace not looked up before gets the error (a 503 page)
      const stale = this.cache.peek(slug, { allowStale: true });
      if (stale) return stale.row;
      throw err;
    }
  }

  /**
   * The cached row when it is still fresh, without a promise or a query: the gateway's hot path
   * (a running preview under load). undefined when not cached, stale or being loaded.
   */
  peek(slug: string): T | null | undefined {
    // a stale row stays: it is what get() falls back on while PostgreSQL does not answer
    return this.cache.get(slug, { noDeleteOnStaleGet: true })?.row;
  }

  forget(slug?: string): void {
    if (slug) this.cache.delete(slug);
    else this.cache.clear();
  }
}
