import { createAppAuth } from '@octokit/auth-app';
import { request } from '@octokit/request';
import { Probot, ProbotOctokit } from 'probot';
import type { BerthConfig } from './config.js';
import type { Logger } from './log.js';

export type OctokitClass = typeof ProbotOctokit;

/** A Probot instance for Berth's GitHub App; both processes use it to act as an installation. */
export function createProbotFor(config: BerthConfig, Octokit: OctokitClass = ProbotOctokit, log?: Logger): Probot {
  const probot = new Probot({
    // Berth's logger (lib/log.ts), so Probot's lines share its format and level
    ...(log ? { log } : {}),
    appId: config.APP_ID!,
    privateKey: config.privateKey!,
    secret: config.WEBHOOK_SECRET!,
    baseUrl: config.githubApiUrl,
    Octokit,
    logLevel: config.LOG_LEVEL === 'silent' ? 'fatal' : config.LOG_LEVEL,
  });
  return registerTokenMinter(probot, config);
}

const tokenMinters = new WeakMap<Probot, ReturnType<typeof createAppAuth>>();

/**
 * Remembers how to mint installation tokens for `probot`. Probot's own `octokit.auth()`
 * mints them against api.github.com whatever the baseUrl (its auth strategy carries a request
 * without one), so on GitHub Enterprise Server it only worked when a token was cached already.
 */
export function registerTokenMinter(probot: Probot, config: BerthConfig): Probot {
  tokenMinters.set(
    probot,
    createAppAuth({ appId: config.APP_ID!, privateKey: config.privateKey!, request: request.defaults({ baseUrl: config.githubApiUrl }) }),
  );
  return probot;
}

/**
 * A token for cloning and fetching one repository: limited to that repository and to
 * `contents: read`, so a token that leaks from a clone (a build log, a process listing, a
 * hostile git server) can read that one repository's code and nothing else: not the
 * installation's other repositories, and no writes anywhere. 1 h, cached per repository.
 */
export async function cloneToken(probot: Probot, installationId: number, repositoryId: number): Promise<string> {
  const mint = tokenMinters.get(probot);
  if (!mint) throw new Error('cloneToken: create the Probot with createProbotFor');
  const { token } = await mint({ type: 'installation', installationId, repositoryIds: [repositoryId], permissions: { contents: 'read' } });
  return token;
}

/** An installation access token (1 h, cached); callers must keep it out of logs, payloads and disks. */
export async function installationToken(probot: Probot, installationId: number): Promise<string> {
  const mint = tokenMinters.get(probot);
  if (!mint) throw new Error('installationToken: create the Probot with createProbotFor');
  const { token } = await mint({ type: 'installation', installationId });
  return token;
}
