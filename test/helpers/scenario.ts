import { expect } from 'vitest';
import { startFakeGitHub, type FakeGitHub, type Permission } from '../fakes/github.js';
import { sendWebhook } from '../fakes/webhooks.js';
import { ensureBaseImage } from '../fixtures/base-image.js';
import { startTestBerth, type TestBerth } from './berth.js';

export interface ScenarioOptions {
  owner: string;
  repo: string;
  /** a private repository's previews need sign-in; public by default so tests open them directly */
  private?: boolean;
  /** people and their permission on the repository */
  people?: Record<string, Permission>;
  /** what the default branch holds (a README by default) */
  main?: Record<string, string>;
  /** Berth's environment on top of the test defaults */
  env?: Record<string, string>;
  /** build the local base image first (tests whose apps build FROM it) */
  baseImage?: boolean;
}

export interface Scenario {
  fake: FakeGitHub;
  berth: TestBerth;
  installationId: number;
}

/**
 * What most end-to-end tests start from: a fake GitHub with an organisation that installed the
 * App, one repository with a commit on main, people with their permissions, and a Berth on it.
 */
export async function startScenario(o: ScenarioOptions): Promise<Scenario> {
  if (o.baseImage) await ensureBaseImage();
  const fake = await startFakeGitHub();
  const installationId = fake.addInstallation({ login: o.owner, type: 'Organization' }).id;
  fake.createRepo(o.owner, o.repo, { installationId, private: o.private ?? false });
  await fake.pushFiles(o.owner, o.repo, 'main', o.main ?? { 'README.md': `# ${o.repo}\n` });
  for (const [login, permission] of Object.entries(o.people ?? {})) {
    fake.addUser(login);
    fake.setPermission(o.owner, o.repo, login, permission);
  }
  const berth = await startTestBerth(fake, o.env);
  return { fake, berth, installationId };
}

export async function stopScenario(s: Partial<Scenario> | undefined): Promise<void> {
  await s?.berth?.close();
  await s?.fake?.close();
}

/** sends a signed webhook to the scenario's Berth and expects it accepted */
export function webhookSender(scenario: () => Scenario) {
  return async (event: string, payload: unknown): Promise<void> => {
    const { berth, fake } = scenario();
    const res = await sendWebhook(berth.webhookUrl, event, payload, fake.webhookSecret);
    expect(res.status).toBeLessThan(300);
  };
}
