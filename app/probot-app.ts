import type { ApplicationFunction } from 'probot';
import type { AppDeps } from './deps.js';
import { onPush } from './webhooks/push.js';
import { onInstallation, onInstallationRepositories } from './webhooks/installation.js';
import { onDelete, onPullRequest } from './webhooks/pull-request.js';
import { onCheckRun, onIssueComment } from './webhooks/commands.js';

/** Registers one handler per webhook event; each only records and enqueues. */
export function berthApp(deps: AppDeps): ApplicationFunction {
  return (app) => {
    app.on('push', (ctx) => onPush(deps, ctx));
    app.on('installation', (ctx) => onInstallation(deps, ctx));
    app.on('installation_repositories', (ctx) => onInstallationRepositories(deps, ctx));
    app.on('pull_request', (ctx) => onPullRequest(deps, ctx));
    app.on('delete', (ctx) => onDelete(deps, ctx));
    app.on('issue_comment', (ctx) => onIssueComment(deps, ctx));
    app.on('check_run', (ctx) => onCheckRun(deps, ctx));
  };
}
