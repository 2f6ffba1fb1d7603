import type { ApplicationFunction } from 'probot';
import type { AppDeps } from './deps.js';
import { onPush } from './webhooks/push.js';
import { onInstallation, onInstallationRepositories } from './webhooks/installation.js';
import { onDelete, onPullRequest } from './webhooks/pull-request.js';
import { onCheckRun, onIssueComment } from './webhooks/commands.js';
import { onRepository } from './webhooks/repository.js';
import { forgetDelivery } from './webhooks/record.js';

/** Registers one handler per webhook event; each only records and enqueues. */
export function berthApp(deps: AppDeps): ApplicationFunction {
  // Each handler records its delivery (so a redelivery acts once) and enqueues. When that
  // fails (PostgreSQL or Redis down) Probot answers 500 at once, and the record goes again so
  // that GitHub's redelivery of the same delivery is not taken for a duplicate. What was
  // already written (a queued build) is picked up by the reconciler once Redis is back.
  const once =
    <C extends { id: string }>(handler: (deps: AppDeps, ctx: C) => Promise<void>) =>
    async (ctx: C) => {
      try {
        await handler(deps, ctx);
      } catch (err) {
        await forgetDelivery(deps.db, ctx.id);
        throw new WebhookHandlerError(err);
      }
    };
  return (app) => {
    app.on('push', once(onPush));
    app.on('installation', once(onInstallation));
    app.on('installation_repositories', once(onInstallationRepositories));
    app.on('pull_request', once(onPullRequest));
    app.on('delete', once(onDelete));
    app.on('issue_comment', once(onIssueComment));
    app.on('check_run', once(onCheckRun));
    app.on('repository', once(onRepository));
  };
}

/**
 * A handler's failure as Probot logs it (one error line with its delivery id). @octokit/webhooks
 * attaches the whole delivery to the error it logs (`error.event`: the payload, up to 25 MB, and
 * pino prints every property of an error); this error keeps its message and stack but drops
 * that assignment, so a failed delivery never writes its body to Berth's log.
 */
export class WebhookHandlerError extends Error {
  readonly status?: number;

  constructor(cause: unknown) {
    const err = cause instanceof Error ? cause : new Error(String(cause));
    super(err.message);
    this.name = err.name;
    this.stack = err.stack;
    const status = (err as { status?: unknown }).status;
    if (typeof status === 'number') this.status = status;
  }

  get event(): undefined {
    return undefined;
  }

  set event(_delivery: unknown) {
    // not kept: see the class comment
  }
}
