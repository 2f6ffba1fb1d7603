import fs from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeGitHub, type FakeGitHub } from '../fakes/github.js';
import { pushPayload, sendWebhook } from '../fakes/webhooks.js';
import { ensureBaseImage } from '../fixtures/base-image.js';
import { sampleAppFiles } from '../fixtures/sample-app.js';
import { startTestBerth, type TestBerth } from '../helpers/berth.js';
import { waitFor } from '../helpers/http.js';

/**
 * The dashboard in real Chromium against a whole running Berth (real PostgreSQL, Redis,
 * Docker; GitHub is the fake): sign in through GitHub's OAuth flow, watch a real build's log
 * stream in, see the workspace run, stop it from the list, and check that a reader gets no
 * buttons and that forged posts are refused. Screenshots go to test-artifacts/.
 */
const ARTIFACTS = path.resolve('test-artifacts');
const BRANCH = 'feature/dashboard';

describe('dashboard in a browser', () => {
  let fake: FakeGitHub;
  let berth: TestBerth;
  let browser: Browser;
  let installationId: number;
  let workspaceId: string;
  const contexts: BrowserContext[] = [];

  beforeAll(async () => {
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    await ensureBaseImage();
    fake = await startFakeGitHub();
    installationId = fake.addInstallation({ login: 'acme', type: 'Organization' }).id;
    fake.createRepo('acme', 'shop', { installationId });
    fake.addUser('alice', { name: 'Alice Writer' });
    fake.addUser('bob', { name: 'Bob Reader' });
    fake.setPermission('acme', 'shop', 'alice', 'write');
    fake.setPermission('acme', 'shop', 'bob', 'read');
    berth = await startTestBerth(fake);
    browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    });
  });

  afterAll(async () => {
    for (const c of contexts) await c.close().catch(() => {});
    await browser?.close();
    for (const ws of (await berth?.db.workspace.findMany({ where: { state: { not: 'deleted' } } })) ?? []) {
      await berth.queues.enqueueWorkspace('delete', { workspaceId: ws.id, actor: 'test' });
    }
    if (berth) await waitFor('workspaces deleted', async () => (await berth.db.workspace.count({ where: { state: { not: 'deleted' }, runningSha: { not: null } } })) === 0, 30_000).catch(() => {});
    await berth?.close();
    await fake?.close();
  });

  /** A fresh browser profile signed in as `login` through Berth's GitHub sign-in. */
  async function signIn(login: string): Promise<Page> {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    contexts.push(context);
    const page = await context.newPage();
    fake.setOAuthUser(login);
    await page.goto(`${berth.config.berthUrl}/`);
    // Berth → GitHub's authorize page (answers at once for the chosen user) → Berth's callback → the list
    await page.waitForURL(`${berth.config.berthUrl}/`);
    await expect(page.locator('header .user').textContent()).resolves.toBe(login);
    return page;
  }

  const shot = (page: Page, name: string) => page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });

  /** Reloads (the pages also reload themselves while something happens) until `check` holds. */
  async function until(page: Page, what: string, check: () => Promise<boolean>, timeoutMs = 150_000) {
    await waitFor(
      what,
      async () => {
        if (await check().catch(() => false)) return true;
        await page.reload({ waitUntil: 'domcontentloaded' }).catch(() => {});
        return check().catch(() => false);
      },
      timeoutMs,
      1000,
    );
  }

  async function addUiOnlyWorkspaces() {
    // Rows for the screenshots and filters; the real one comes from a push.
    const repo = await berth.db.repository.findFirstOrThrow({ where: { fullName: 'acme/shop' } });
    const base = { repositoryId: repo.id, headSha: 'c0ffee1'.padEnd(40, '0'), lastActivityAt: new Date(Date.now() - 2 * 3_600_000) };
    await berth.db.workspace.create({ data: { ...base, branch: 'fix/checkout-total', slug: 'fix-checkout-total-shop', state: 'stopped', stateReason: 'idle for 30 min', runningSha: base.headSha, prNumber: 41 } });
    await berth.db.workspace.create({ data: { ...base, branch: 'experiment/search', slug: 'experiment-search-shop', state: 'failed', stateReason: 'migrate failed (exit code 3): migration failed: boom' } });
  }

  it('a writer signs in, watches the build log stream live, and sees the workspace in the list', async () => {
    // signed in first, so the log page opens while the build still runs
    const page = await signIn('alice');
    await expect(page.locator('.empty').textContent()).resolves.toContain('There are no repositories here that you can read');
    const sha = await fake.pushFiles('acme', 'shop', BRANCH, sampleAppFiles());
    const res = await sendWebhook(berth.webhookUrl, 'push', pushPayload({ fake, owner: 'acme', repo: 'shop', branch: BRANCH, after: sha, installationId }), fake.webhookSecret);
    expect(res.status).toBeLessThan(300);
    const build = await waitFor('the build row', () => berth.db.build.findFirst({ where: { sha } }), 30_000);
    workspaceId = build.workspaceId!;
    // Open the log while the build (or the start that follows it) still writes to it.
    await page.goto(`${berth.config.berthUrl}/builds/${build.id}/log`);
    await expect(page.locator('#live').textContent()).resolves.toBe('live');
    const initialNodes = await page.locator('#log').evaluate((el) => el.childNodes.length);
    // New chunks arrive over Server-Sent Events and are appended without a reload.
    await page.waitForFunction((n) => document.getElementById('log')!.childNodes.length > n, initialNodes, { timeout: 120_000 });
    await page.locator('#log', { hasText: '==> build finished' }).waitFor({ timeout: 150_000 });
    await page.evaluate(() => window.scrollTo(0, 0)); // the page follows the log's end
    await page.screenshot({ path: path.join(ARTIFACTS, 'build-log-live.png') });
    // The stream ends when the workspace has started on the build; the page says so.
    await page.locator('#live', { hasText: 'finished' }).waitFor({ timeout: 150_000 });
    await expect(page.locator('#build-state').getAttribute('data-state')).resolves.toBe('succeeded');
    const text = await page.locator('#log').textContent();
    expect(text).toMatch(/FROM berth-base:node20/);
    expect(text).toContain('seeding');
    await shot(page, 'build-log');

    await addUiOnlyWorkspaces();
    await page.goto(`${berth.config.berthUrl}/`);
    const row = page.locator(`tr[data-workspace="${workspaceId}"]`);
    await until(page, 'the workspace to show running', async () => (await row.locator('[data-state]').getAttribute('data-state')) === 'running');
    await expect(row.locator('td').first().textContent()).resolves.toContain(BRANCH);
    await expect(row.locator('code').first().textContent()).resolves.toBe(sha.slice(0, 7));
    await expect(row.locator('time').nth(1).textContent()).resolves.toMatch(/^in (29|30) min$/);
    for (const action of ['refresh', 'stop', 'delete']) await expect(row.locator(`button[data-action="${action}"]`).count()).resolves.toBe(1);
    await expect(row.locator('a[data-link="open"]').getAttribute('href')).resolves.toBe(`${berth.config.berthUrl}/workspaces/${workspaceId}/ide`);
    await expect(row.locator('a[data-link="preview"]').getAttribute('href')).resolves.toMatch(/^http:\/\/[a-z0-9-]+\.localhost:\d+\/$/);
    await shot(page, 'workspaces');

    // filters and search work from the form, without JavaScript's help
    await page.selectOption('select[name="state"]', 'failed');
    await page.click('form[role="search"] button[type="submit"]');
    await expect(page.locator('tr[data-branch]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-branch')))).resolves.toEqual(['experiment/search']);
    await page.goto(`${berth.config.berthUrl}/?q=checkout`);
    await expect(page.locator('tr[data-branch]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-branch')))).resolves.toEqual(['fix/checkout-total']);
  });

  it('a writer stops the workspace from the list and sees its state change', async () => {
    const page = await signIn('alice');
    const row = page.locator(`tr[data-workspace="${workspaceId}"]`);
    await row.locator('button[data-action="stop"]').click();
    await page.waitForURL(`${berth.config.berthUrl}/`);
    await expect(page.locator('.flash').textContent()).resolves.toContain(`Stopping the workspace of ${BRANCH}`);
    // the list reloads itself while the stop is pending, until the worker has stopped it
    await until(page, 'the workspace to show stopped', async () => (await row.locator('[data-state]').getAttribute('data-state')) === 'stopped', 60_000);
    await expect(row.locator('button[data-action="start"]').count()).resolves.toBe(1);
    await expect(row.locator('button[data-action="stop"]').count()).resolves.toBe(0);
    await shot(page, 'workspaces-stopped');
    const ws = await berth.db.workspace.findUniqueOrThrow({ where: { id: workspaceId } });
    expect(ws.state).toBe('stopped');
    const event = await berth.db.workspaceEvent.findFirstOrThrow({ where: { workspaceId, toState: 'stopped' }, orderBy: { id: 'desc' } });
    expect(event).toMatchObject({ actor: '@alice', reason: 'stopped by @alice from the dashboard' });

    // the workspace page shows the history with who stopped it, and the builds with their logs
    await row.locator('td a').first().click();
    await page.waitForURL(`${berth.config.berthUrl}/workspaces/${workspaceId}`);
    await expect(page.locator('#history tbody tr').first().textContent()).resolves.toContain('@alice (dashboard)');
    // the worker records the stop first, then stops the containers (they get a few seconds to exit)
    await until(page, 'the web container to be gone', async () => ((await page.locator('#services [data-service="web"]').textContent()) ?? '').includes('no container'), 30_000);
    await expect(page.locator('#builds a', { hasText: 'log' }).count()).resolves.toBeGreaterThan(0);
    await shot(page, 'workspace');
  });

  it('a writer deletes a workspace only after confirming', async () => {
    const page = await signIn('alice');
    const row = page.locator('tr[data-branch="experiment/search"]');
    await row.locator('button[data-action="delete"]').click();
    // without JavaScript, the first post answers with a confirmation page
    await expect(page.locator('h1').textContent()).resolves.toBe('Delete the workspace of experiment/search?');
    await shot(page, 'confirm-delete');
    await page.click('a.button:has-text("Cancel")');
    await page.waitForURL(`${berth.config.berthUrl}/`);
    await expect(row.locator('[data-state]').getAttribute('data-state')).resolves.toBe('failed');
    await row.locator('button[data-action="delete"]').click();
    await page.click('button[data-action="confirm-delete"]');
    await page.waitForURL(`${berth.config.berthUrl}/`);
    await expect(page.locator('.flash').textContent()).resolves.toContain('Deleting the workspace of experiment/search');
    await until(page, 'the workspace to leave the list', async () => (await page.locator('tr[data-branch="experiment/search"]').count()) === 0, 60_000);
    const ws = await berth.db.workspace.findFirstOrThrow({ where: { branch: 'experiment/search' } });
    expect(ws.state).toBe('deleted');
  });

  it('a reader sees no action buttons, and forged posts are refused', async () => {
    const page = await signIn('bob');
    const row = page.locator(`tr[data-workspace="${workspaceId}"]`);
    await row.waitFor();
    await expect(page.locator('button[data-action]').count()).resolves.toBe(0);
    await expect(page.locator('a[data-link="open"]').count()).resolves.toBe(0);
    await shot(page, 'workspaces-reader');
    await page.goto(`${berth.config.berthUrl}/workspaces/${workspaceId}`);
    await expect(page.locator('button[data-action]').count()).resolves.toBe(0);

    // A reader who crafts the post by hand, with a valid CSRF token of their own session: 403.
    const csrf = await page.locator('input[name="_csrf"]').first().inputValue();
    expect(csrf).not.toBe('');
    const forged = await page.evaluate(
      async ({ id, token }) => {
        const r = await fetch(`/workspaces/${id}/start`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `_csrf=${token}` });
        return { status: r.status, body: await r.text() };
      },
      { id: workspaceId, token: csrf },
    );
    expect(forged.status).toBe(403);
    expect(forged.body).toContain('write access');
    await page.setContent(forged.body);
    await shot(page, 'forbidden');

    // A writer's session without the page's CSRF token (a post from another site): 403 too.
    const alice = await signIn('alice');
    const noToken = await alice.evaluate(async (id) => {
      const r = await fetch(`/workspaces/${id}/start`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: '' });
      return r.status;
    }, workspaceId);
    expect(noToken).toBe(403);
    await new Promise((r) => setTimeout(r, 1000));
    const ws = await berth.db.workspace.findUniqueOrThrow({ where: { id: workspaceId } });
    expect(ws.state).toBe('stopped');
    const jobs = await berth.queues.workspaces.getJobs(['waiting', 'active', 'delayed']);
    expect(jobs.filter((j) => j.data.workspaceId === workspaceId)).toHaveLength(0);
  });

  it('unknown pages answer 404 in the same style', async () => {
    const page = await signIn('alice');
    const res = await page.goto(`${berth.config.berthUrl}/workspaces/no-such-workspace`);
    expect(res?.status()).toBe(404);
    await expect(page.locator('h1').textContent()).resolves.toContain('404');
    await shot(page, 'not-found');
  });
});
