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
 * Workspaces by slug for the gateways. Each row is reused for a quarter second, which saves a
 * query per request under load yet proxies a workspace that just became running within 250 ms;
 * requests that arrive together share one query. Bounded, because anyone can send requests
 * for made-up hosts.
 */
export class WorkspaceLookup<T extends object> {
  private readonly cache: LRUCache<string, { row: T | null }>;

  constructor(load: (slug: string) => Promise<T | null>, opts: { ttlMs?: number; max?: number } = {}) {
    this.cache = new LRUCache<string, { row: T | null }>({
      max: opts.max ?? 10_000,
      ttl: opts.ttlMs ?? 250,
      fetchMethod: async (slug) => ({ row: (await load(slug)) as T | null }),
    });
  }

  /** `fresh`: skip the cached row (the caller waits for a change). */
  async get(slug: string, opts: { fresh?: boolean } = {}): Promise<T | null> {
    const entry = await this.cache.fetch(slug, { forceRefresh: opts.fresh ?? false });
    return entry?.row ?? null;
  }

  forget(slug?: string): void {
    if (slug) this.cache.delete(slug);
    else this.cache.clear();
  }
}
