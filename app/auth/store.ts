import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { SessionUser } from './types.js';

/** How long a sign-in lasts. GitHub is asked about access far more often (see access.ts). */
export const SESSION_TTL_S = 12 * 60 * 60;
/** A workspace ticket only has to survive one redirect. */
export const TICKET_TTL_S = 60;

export type WorkspaceKind = 'ide' | 'preview';

/** What a one-time ticket carries from BERTH_URL to a workspace host. */
export interface Ticket {
  sid: string;
  workspaceId: string;
  kind: WorkspaceKind;
  /** where to go on the workspace host after the exchange */
  path: string;
}

interface StoredSession {
  id: string;
  login: string;
  name: string | null;
  avatarUrl: string | null;
  expiresAt: number;
}

/**
 * Sessions and one-time tickets in Redis. Sessions live server-side so that signing out ends
 * them everywhere, including on workspace hosts whose cookies only name the session.
 */
export class AuthStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  async createSession(user: SessionUser): Promise<{ sid: string; expiresAt: number }> {
    const sid = randomBytes(24).toString('base64url');
    const expiresAt = Date.now() + SESSION_TTL_S * 1000;
    const stored: StoredSession = { id: user.id.toString(), login: user.login, name: user.name ?? null, avatarUrl: user.avatarUrl ?? null, expiresAt };
    await this.redis.set(this.key('session', sid), JSON.stringify(stored), 'EX', SESSION_TTL_S);
    return { sid, expiresAt };
  }

  async session(sid: string): Promise<(SessionUser & { expiresAt: number }) | null> {
    const raw = await this.redis.get(this.key('session', sid));
    if (!raw) return null;
    const s = JSON.parse(raw) as StoredSession;
    return { id: BigInt(s.id), login: s.login, name: s.name, avatarUrl: s.avatarUrl, expiresAt: s.expiresAt };
  }

  async deleteSession(sid: string): Promise<void> {
    await this.redis.del(this.key('session', sid));
  }

  async mintTicket(ticket: Ticket): Promise<string> {
    const token = randomBytes(24).toString('base64url');
    await this.redis.set(this.key('ticket', token), JSON.stringify(ticket), 'EX', TICKET_TTL_S);
    return token;
  }

  /** the ticket, exactly once: GETDEL makes a second use (or a replay) find nothing */
  async consumeTicket(token: string): Promise<Ticket | null> {
    if (!/^[A-Za-z0-9_-]{16,64}$/.test(token)) return null;
    const raw = await this.redis.getdel(this.key('ticket', token));
    return raw ? (JSON.parse(raw) as Ticket) : null;
  }

  private key(kind: string, id: string): string {
    return `${this.prefix}:auth:${kind}:${id}`;
  }
}
