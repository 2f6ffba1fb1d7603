import { Probot, ProbotOctokit } from 'probot';
import type { BerthConfig } from './config.js';

export type OctokitClass = typeof ProbotOctokit;

/** A Probot instance for Berth's GitHub App; both processes use it to act as an installation. */
export function createProbotFor(config: BerthConfig, Octokit: OctokitClass = ProbotOctokit): Probot {
  return new Probot({
    appId: config.APP_ID!,
    privateKey: config.privateKey!,
    secret: config.WEBHOOK_SECRET!,
    baseUrl: config.githubApiUrl,
    Octokit,
    logLevel: config.LOG_LEVEL === "silent" ? "fatal" : config.LOG_LEVEL,
  });
}

/** An installation access token (1 h); callers must keep it out of logs, payloads and disks. */
export async function installationToken(probot: Probot, installationId: number): Promise<string> {
  const octokit = await probot.auth(installationId);
  const auth = (await octokit.auth({ type: 'installation' })) as { token: string };
  return auth.token;
}
