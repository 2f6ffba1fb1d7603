import type { IncomingMessage, ServerResponse } from 'node:http';

/**
 * The contract between sign-in (app/auth) and the pages that need it (dashboard, IDE,
 * private previews). Implemented by app/auth/auth.ts.
 */
export interface SessionUser {
  id: bigint;
  login: string;
  name?: string | null;
  avatarUrl?: string | null;
}

export type RepoAccess = 'none' | 'read' | 'write';

export interface Auth {
  /** the signed-in user of a request on BERTH_URL, or null */
  currentUser(req: IncomingMessage): Promise<SessionUser | null>;
  /**
   * the signed-in user, or null after answering: a redirect to sign-in for page requests
   * (GET), 401 for others
   */
  requireUser(req: IncomingMessage, res: ServerResponse): Promise<SessionUser | null>;
  /** the user's access to a repository, asked from GitHub and cached for minutes */
  access(user: SessionUser, repo: { owner: string; name: string; installationId: bigint }): Promise<RepoAccess>;
  /** the CSRF token to put in forms (hidden input `_csrf`) and the `x-csrf-token` header */
  csrfToken(req: IncomingMessage): string;
  /** true when a state-changing request carries the right CSRF token (form field or header) */
  verifyCsrf(req: IncomingMessage, form?: Record<string, string>): boolean;
  /** request handler for /login, /login/callback, /logout on BERTH_URL; false when not one of them */
  handle(req: IncomingMessage, res: ServerResponse): Promise<boolean>;
}
