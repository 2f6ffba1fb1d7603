import { spawn } from "node:child_process";
import fs from "node:fs/promises";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ProbotOctokit, createProbot } from "probot";
import { Webhooks, createNodeMiddleware } from "@octokit/webhooks";
import { startFakeGitHub, type FakeGitHub } from "../fakes/github.js";
import { assertDocumentedRequests, assertDocumentedResponses } from "../fakes/openapi-check.js";
import {
  checkRunPayload,
  deletePayload,
  installationPayload,
  installationRepositoriesPayload,
  issueCommentPayload,
  pullRequestPayload,
  pushPayload,
  sendWebhook,
  sign,
} from "../fakes/webhooks.js";

const TestOctokit = ProbotOctokit.defaults((o: any) => ({
  ...o,
  throttle: { ...o.throttle, enabled: false },
  retry: { enabled: false },
}));

function git(args: string[], cwd?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("GIT_")) env[k] = v;
    Object.assign(env, { GIT_TERMINAL_PROMPT: "0", GIT_CONFIG_NOSYSTEM: "1", GIT_CONFIG_GLOBAL: "/dev/null", GIT_ASKPASS: "/bin/false" });
    const child = spawn("git", ["-c", "credential.helper=", ...args], { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

describe("fake GitHub", () => {
  let fake: FakeGitHub;
  let installationId: number;
  let tmp: string;
  let mainSha: string;
  let featureSha: string;

  beforeAll(async () => {
    fake = await startFakeGitHub();
    tmp = await fs.mkdtemp(path.join(os.tmpdir(), "fake-github-test-"));
    installationId = fake.addInstallation({ login: "acme", type: "Organization" }).id;
    fake.createRepo("acme", "web", { installationId, private: true });
    fake.createRepo("acme", ".github", { installationId, private: true });
    await fake.pushFiles("acme", ".github", "main", { ".github/berth.yml": "workspace:\n  ide: vim\n  idle_timeout: 10m\n" });
    mainSha = await fake.pushFiles("acme", "web", "main", {
      "README.md": "# web\n",
      ".github/berth.yml": "_extends: .github\nservices:\n  web:\n    build: .\n    port: 3000\n",
    });
    featureSha = await fake.pushFiles("acme", "web", "feature/login", { "src/login.ts": "export const x = 1;\n" }, "Add login");
    fake.setPermission("acme", "web", "alice", "write");
    fake.setPermission("acme", "web", "mallory", "triage");
    fake.addUser("bob");
  });

  afterAll(async () => {
    await fake?.close();
    if (tmp) await fs.rm(tmp, { recursive: true, force: true });
  });

  it("authenticates as the app, mints an installation token, and writes a check run, a comment and a reaction", async () => {
    const app = new TestOctokit({ auth: { appId: fake.appId, privateKey: fake.privateKey }, baseUrl: fake.apiUrl });
    const { data: me } = await app.request("GET /app");
    expect(me?.slug).toBe("berth-test");
    expect((await app.request("GET /repos/{owner}/{repo}/installation", { owner: "acme", repo: "web" })).data.id).toBe(installationId);

    const { data: minted } = await app.request("POST /app/installations/{installation_id}/access_tokens", { installation_id: installationId });
    expect(minted.token).toMatch(/^ghs_/);
    expect(new Date(minted.expires_at).getTime()).toBeGreaterThan(Date.now() + 55 * 60 * 1000);

    // the way Probot builds context.octokit: app auth + installationId
    const octokit = await app.auth({
      type: "installation",
      installationId,
      factory: (auth: any) => new TestOctokit({ auth, baseUrl: fake.apiUrl }),
    } as any) as InstanceType<typeof TestOctokit>;

    const { data: created } = await octokit.rest.checks.create({
      owner: "acme",
      repo: "web",
      name: "Berth",
      head_sha: mainSha,
      status: "in_progress",
      external_id: "build-1",
      output: { title: "Building", summary: "Building web" },
      actions: [{ label: "Stop", description: "Stop the workspace", identifier: "stop" }],
    });
    expect(created.status).toBe("in_progress");
    expect(created.started_at).toBeTruthy();
    const { data: done } = await octokit.rest.checks.update({
      owner: "acme",
      repo: "web",
      check_run_id: created.id,
      conclusion: "success",
      details_url: "http://berth.test/w/1",
      output: { title: "Running", summary: "[Preview](http://x) [IDE](http://y)" },
    });
    expect(done.status).toBe("completed");
    expect(done.completed_at).toBeTruthy();
    const [state] = fake.checkRuns("acme", "web", mainSha);
    expect(state).toMatchObject({ name: "Berth", status: "completed", conclusion: "success", external_id: "build-1", details_url: "http://berth.test/w/1" });
    expect(state.actions).toEqual([{ label: "Stop", description: "Stop the workspace", identifier: "stop" }]);
    expect(state.output.summary).toContain("Preview");
    const { data: listed } = await octokit.rest.checks.listForRef({ owner: "acme", repo: "web", ref: "main" });
    expect(listed.total_count).toBe(1);

    const { data: comment } = await octokit.rest.issues.createComment({ owner: "acme", repo: "web", issue_number: 7, body: "<!-- berth -->\nhello" });
    expect(comment.user?.login).toBe("berth-test[bot]");
    expect(comment.user?.type).toBe("Bot");
    await octokit.rest.issues.updateComment({ owner: "acme", repo: "web", comment_id: comment.id, body: "<!-- berth -->\nupdated" });
    expect(fake.issueComments("acme", "web", 7).map((c) => c.body)).toEqual(["<!-- berth -->\nupdated"]);

    const human = fake.addComment("acme", "web", 7, "alice", "/berth stop");
    const { status } = await octokit.rest.reactions.createForIssueComment({ owner: "acme", repo: "web", comment_id: human.id, content: "eyes" });
    expect(status).toBe(201);
    expect(fake.reactions("acme", "web", human.id).map((r) => [r.content, r.user.login])).toEqual([["eyes", "berth-test[bot]"]]);
    await expect(
      octokit.request("POST /repos/{owner}/{repo}/issues/comments/{comment_id}/reactions", { owner: "acme", repo: "web", comment_id: human.id, content: "thumbsup" as any }),
    ).rejects.toMatchObject({ status: 422 });

    const perm = await octokit.rest.repos.getCollaboratorPermissionLevel({ owner: "acme", repo: "web", username: "alice" });
    expect(perm.data).toMatchObject({ permission: "write", role_name: "write" });
    const triage = await octokit.rest.repos.getCollaboratorPermissionLevel({ owner: "acme", repo: "web", username: "mallory" });
    expect(triage.data).toMatchObject({ permission: "read", role_name: "triage" });
    const none = await octokit.rest.repos.getCollaboratorPermissionLevel({ owner: "acme", repo: "web", username: "bob" });
    expect(none.data.permission).toBe("none");
    await expect(octokit.rest.repos.getCollaboratorPermissionLevel({ owner: "acme", repo: "web", username: "ghost" })).rejects.toMatchObject({ status: 404 });
  });

  it("works as GHE_HOST for a real Probot app (context.octokit, context.config, reactions)", async () => {
    const probot = createProbot({
      env: {
        APP_ID: String(fake.appId),
        PRIVATE_KEY: fake.privateKey,
        WEBHOOK_SECRET: fake.webhookSecret,
        GHE_HOST: fake.host,
        GHE_PROTOCOL: "http",
        LOG_LEVEL: "fatal",
      },
      overrides: { Octokit: TestOctokit },
    });
    const pr = fake.createPullRequest("acme", "web", { head: "feature/login", user: "alice", title: "Login" });
    await probot.load((app) => {
      app.on("issue_comment.created", async (context) => {
        const config = (await context.config("berth.yml")) as any;
        await context.octokit.rest.reactions.createForIssueComment(context.repo({ comment_id: context.payload.comment.id, content: "eyes" }));
        const { data: pull } = await context.octokit.rest.pulls.get(context.repo({ pull_number: context.payload.issue.number }));
        await context.octokit.rest.issues.createComment(context.issue({ body: `ide=${config.workspace.ide} head=${pull.head.sha}` }));
      });
    });
    const payload = issueCommentPayload({ fake, owner: "acme", repo: "web", issueNumber: pr.number, body: "/berth status", user: "alice" });
    const body = JSON.stringify(payload);
    await probot.webhooks.verifyAndReceive({ id: "delivery-1", name: "issue_comment", payload: body, signature: sign(body, fake.webhookSecret) });
    const comments = fake.issueComments("acme", "web", pr.number);
    expect(comments.at(-1)).toMatchObject({ body: `ide=vim head=${pr.head.sha}`, user: { login: "berth-test[bot]" }, via_app: true });
    expect(fake.reactions("acme", "web", payload.comment.id).map((r) => r.content)).toEqual(["eyes"]);
    fake.updatePullRequest("acme", "web", pr.number, { state: "closed" });
  });

  it("paginates issue comments with a Link header", async () => {
    const { token } = fake.mintInstallationToken(installationId);
    const octokit = new TestOctokit({ auth: { token }, baseUrl: fake.apiUrl });
    for (let i = 0; i < 5; i++) fake.addComment("acme", "web", 11, "alice", `comment ${i}`);
    await octokit.rest.issues.createComment({ owner: "acme", repo: "web", issue_number: 11, body: "<!-- berth:sticky -->" });
    const first = await octokit.rest.issues.listComments({ owner: "acme", repo: "web", issue_number: 11, per_page: 2 });
    expect(first.data).toHaveLength(2);
    expect(first.headers.link).toContain('rel="next"');
    expect(first.headers.link).toContain('rel="last"');
    const all = await octokit.paginate(octokit.rest.issues.listComments, { owner: "acme", repo: "web", issue_number: 11, per_page: 2 });
    expect(all).toHaveLength(6);
    expect(all.find((c) => c.body?.includes("berth:sticky"))?.user?.type).toBe("Bot");
  });

  it("validates check runs like GitHub", async () => {
    const { token } = fake.mintInstallationToken(installationId);
    const octokit = new TestOctokit({ auth: { token }, baseUrl: fake.apiUrl });
    const base = { owner: "acme", repo: "web", name: "Berth", head_sha: mainSha };
    const action = (identifier: string, label = "Go") => ({ label, description: "d", identifier });
    await expect(octokit.rest.checks.create({ ...base, actions: [action("a"), action("b"), action("c"), action("d")] })).rejects.toMatchObject({ status: 422 });
    await expect(octokit.rest.checks.create({ ...base, actions: [action("a", "x".repeat(21))] })).rejects.toMatchObject({ status: 422 });
    await expect(octokit.rest.checks.create({ ...base, actions: [{ label: "ok", description: "y".repeat(41), identifier: "a" }] })).rejects.toMatchObject({ status: 422 });
    await expect(octokit.rest.checks.create({ ...base, actions: [action("i".repeat(21))] })).rejects.toMatchObject({ status: 422 });
    await expect(octokit.rest.checks.create({ ...base, status: "completed" } as any)).rejects.toMatchObject({ status: 422 });
    await expect(octokit.rest.checks.create({ ...base, output: { title: "t", summary: "s".repeat(65536) } })).rejects.toMatchObject({ status: 422 });
    await expect(octokit.rest.checks.create({ ...base, head_sha: "1".repeat(40) })).rejects.toMatchObject({ status: 422 });
    const ok = await octokit.rest.checks.create({ ...base, actions: [action("a"), action("b"), action("c")], output: { title: "t", summary: "s".repeat(65535) } });
    expect(ok.status).toBe(201);
    await expect(octokit.rest.checks.update({ owner: "acme", repo: "web", check_run_id: ok.data.id, status: "completed" })).rejects.toMatchObject({ status: 422 });
    expect(fake.getCheckRun(ok.data.id)?.status).toBe("queued");
  });

  it("serves files through the contents API and Probot's config loader (with _extends)", async () => {
    const { token } = fake.mintInstallationToken(installationId);
    const octokit = new TestOctokit({ auth: { token }, baseUrl: fake.apiUrl });
    const { data } = await octokit.rest.repos.getContent({ owner: "acme", repo: "web", path: "README.md" });
    expect(Array.isArray(data)).toBe(false);
    const file = data as { type: string; content: string; encoding: string; sha: string };
    expect(file.type).toBe("file");
    expect(file.encoding).toBe("base64");
    expect(Buffer.from(file.content, "base64").toString()).toBe("# web\n");
    const onBranch = await octokit.rest.repos.getContent({ owner: "acme", repo: "web", path: "src/login.ts", ref: "feature/login" });
    expect(Buffer.from((onBranch.data as any).content, "base64").toString()).toContain("export const x");
    await expect(octokit.rest.repos.getContent({ owner: "acme", repo: "web", path: "src/login.ts" })).rejects.toMatchObject({ status: 404 });
    const dir = await octokit.rest.repos.getContent({ owner: "acme", repo: "web", path: ".github" });
    expect((dir.data as any[]).map((e) => e.name)).toEqual(["berth.yml"]);

    const { config } = await octokit.config.get({ owner: "acme", repo: "web", path: ".github/berth.yml" });
    expect(config).toEqual({ services: { web: { build: ".", port: 3000 } }, workspace: { ide: "vim", idle_timeout: "10m" } });
    const missing = await octokit.config.get({ owner: "acme", repo: "web", path: ".github/nope.yml" });
    expect(missing.config).toEqual({});

    const branch = await octokit.rest.repos.getBranch({ owner: "acme", repo: "web", branch: "feature/login" });
    expect(branch.data.commit.sha).toBe(featureSha);
    const commit = await octokit.rest.repos.getCommit({ owner: "acme", repo: "web", ref: featureSha });
    expect(commit.data.commit.message).toBe("Add login");
    expect(commit.data.parents.map((p) => p.sha)).toEqual([mainSha]);
    const repo = await octokit.rest.repos.get({ owner: "acme", repo: "web" });
    expect(repo.data).toMatchObject({ full_name: "acme/web", private: true, default_branch: "main", clone_url: `${fake.url}/acme/web.git` });
    const installed = await octokit.rest.apps.listReposAccessibleToInstallation();
    expect(installed.data.repositories.map((r) => r.full_name).sort()).toEqual(["acme/.github", "acme/web"]);
  });

  it("clones over smart HTTP with an installation token and refuses bad tokens and pushes", async () => {
    const { token } = fake.mintInstallationToken(installationId);
    const good = `http://x-access-token:${token}@${fake.host}/acme/web.git`;
    const dest = path.join(tmp, "clone");
    const res = await git(["clone", "--quiet", "--branch", "feature/login", good, dest]);
    expect(res.stderr).toBe("");
    expect(res.code).toBe(0);
    expect(await fs.readFile(path.join(dest, "src/login.ts"), "utf8")).toContain("export const x");
    expect((await git(["rev-parse", "HEAD"], dest)).stdout.trim()).toBe(featureSha);

    // fetch a specific sha (what a worker does to build an exact commit)
    const shallow = path.join(tmp, "shallow");
    await git(["init", "--quiet", shallow]);
    const fetched = await git(["fetch", "--quiet", "--depth=1", good, mainSha], shallow);
    expect(fetched.code).toBe(0);

    const bad = await git(["clone", "--quiet", `http://x-access-token:ghs_nope@${fake.host}/acme/web.git`, path.join(tmp, "bad")]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/Authentication failed|401|could not read/i);
    const anonymous = await git(["ls-remote", `${fake.url}/acme/web.git`]);
    expect(anonymous.code).not.toBe(0);
    const gitRequests = fake.requests.filter((r) => r.path.startsWith("/acme/web.git"));
    expect(gitRequests.some((r) => r.status === 401)).toBe(true);

    await fs.writeFile(path.join(dest, "x.txt"), "x");
    await git(["add", "x.txt"], dest);
    await git(["-c", "user.name=t", "-c", "user.email=t@t", "commit", "--quiet", "-m", "x"], dest);
    const push = await git(["push", "--quiet", "origin", "HEAD:refs/heads/evil"], dest);
    expect(push.code).not.toBe(0);
    expect(await fake.resolveRef("acme", "web", "evil")).toBeNull();

    fake.expireInstallationTokens();
    const expired = await git(["ls-remote", good]);
    expect(expired.code).not.toBe(0);
  });

  it("rejects bad JWTs and unknown tokens with GitHub-style errors", async () => {
    const other = await startFakeGitHub({ appId: fake.appId });
    try {
      const forged = new TestOctokit({ auth: { appId: fake.appId, privateKey: other.privateKey }, baseUrl: fake.apiUrl });
      await expect(forged.request("GET /app")).rejects.toMatchObject({ status: 401 });
    } finally {
      await other.close();
    }
    const expiredJwt = fake.appJwt({ iat: Math.floor(Date.now() / 1000) - 700, exp: Math.floor(Date.now() / 1000) - 60 });
    const res = await fetch(`${fake.apiUrl}/app`, { headers: { authorization: `Bearer ${expiredJwt}` } });
    expect(res.status).toBe(401);
    const body = await res.json();
    expect(body).toHaveProperty("message");
    expect(body).toHaveProperty("documentation_url");
    const unknown = await fetch(`${fake.apiUrl}/repos/acme/web`, { headers: { authorization: "token ghs_unknown" } });
    expect(unknown.status).toBe(401);
    const nothing = await fetch(`${fake.apiUrl}/nope/nope`, { headers: { authorization: `Bearer ${fake.appJwt()}` } });
    expect(nothing.status).toBe(404);
    expect(await nothing.json()).toMatchObject({ message: "Not Found" });
  });

  it("serves pull requests, including from forks (refs/pull/N/head)", async () => {
    fake.createRepo("eve", "web", { forkOf: "acme/web", private: false });
    const forkSha = await fake.pushFiles("eve", "web", "patch-1", { "evil.sh": "echo hi\n" }, "From a fork");
    const pr = fake.createPullRequest("acme", "web", { head: "patch-1", headRepo: "eve/web", user: "eve", title: "Fork PR" });
    const same = fake.createPullRequest("acme", "web", { head: "feature/login", user: "alice" });
    expect(same.number).toBe(pr.number + 1);
    const { token } = fake.mintInstallationToken(installationId);
    const octokit = new TestOctokit({ auth: { token }, baseUrl: fake.apiUrl });
    const { data } = await octokit.rest.pulls.get({ owner: "acme", repo: "web", pull_number: pr.number });
    expect(data.head).toMatchObject({ ref: "patch-1", sha: forkSha });
    expect(data.head.repo?.full_name).toBe("eve/web");
    expect(data.head.repo?.fork).toBe(true);
    expect(data.base.ref).toBe("main");
    const byHead = await octokit.rest.pulls.list({ owner: "acme", repo: "web", head: "acme:feature/login", state: "open" });
    expect(byHead.data.map((p) => p.number)).toEqual([same.number]);

    const dest = path.join(tmp, "pr");
    await git(["init", "--quiet", dest]);
    const fetched = await git(["fetch", "--quiet", `http://x-access-token:${token}@${fake.host}/acme/web.git`, `refs/pull/${pr.number}/head`], dest);
    expect(fetched.code).toBe(0);
    expect((await git(["rev-parse", "FETCH_HEAD"], dest)).stdout.trim()).toBe(forkSha);

    const next = await fake.pushFiles("acme", "web", "feature/login", { "b.txt": "b" });
    expect(fake.getPullRequest("acme", "web", same.number)?.head.sha).toBe(next);
  });

  it("runs the OAuth web flow", async () => {
    fake.setOAuthUser("alice");
    const authorize = new URL(`${fake.url}/login/oauth/authorize`);
    authorize.search = new URLSearchParams({ client_id: fake.clientId, redirect_uri: "http://berth.test/auth/callback", state: "xyz" }).toString();
    const res = await fetch(authorize, { redirect: "manual" });
    expect(res.status).toBe(302);
    const location = new URL(res.headers.get("location")!);
    expect(location.origin + location.pathname).toBe("http://berth.test/auth/callback");
    expect(location.searchParams.get("state")).toBe("xyz");
    const code = location.searchParams.get("code")!;
    const exchange = () =>
      fetch(`${fake.url}/login/oauth/access_token`, {
        method: "POST",
        headers: { accept: "application/json", "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ client_id: fake.clientId, client_secret: fake.clientSecret, code }).toString(),
      }).then((r) => r.json());
    const tok = await exchange();
    expect(tok).toMatchObject({ token_type: "bearer" });
    expect(await exchange()).toMatchObject({ error: "bad_verification_code" });
    const user = new TestOctokit({ auth: { token: tok.access_token }, baseUrl: fake.apiUrl });
    expect((await user.rest.users.getAuthenticated()).data.login).toBe("alice");
    expect((await user.rest.repos.get({ owner: "acme", repo: "web" })).data.permissions).toMatchObject({ push: true, admin: false });
    const insts = await user.rest.apps.listInstallationsForAuthenticatedUser();
    expect(insts.data.installations.map((i) => i.id)).toEqual([installationId]);

    fake.setOAuthUser(null);
    const denied = await fetch(authorize, { redirect: "manual" });
    expect(new URL(denied.headers.get("location")!).searchParams.get("error")).toBe("access_denied");
  });

  it("injects faults", async () => {
    const { token } = fake.mintInstallationToken(installationId);
    const octokit = new TestOctokit({ auth: { token }, baseUrl: fake.apiUrl });
    fake.failNext("POST", /\/check-runs$/, 502, 2);
    const args = { owner: "acme", repo: "web", name: "Berth", head_sha: mainSha };
    await expect(octokit.rest.checks.create(args)).rejects.toMatchObject({ status: 502 });
    await expect(octokit.rest.checks.create(args)).rejects.toMatchObject({ status: 502 });
    expect((await octokit.rest.checks.create(args)).status).toBe(201);
  });

  it("builds webhook payloads that @octokit/webhooks accepts", async () => {
    const webhooks = new Webhooks({ secret: fake.webhookSecret });
    const seen: string[] = [];
    webhooks.onAny(({ name, payload }) => {
      seen.push(`${name}.${(payload as any).action ?? ""}`);
    });
    const cr = fake.checkRuns("acme", "web")[0];
    const prNumber = fake.pullRequests("acme", "web").find((p) => p.head.repo === "eve/web")!.number;
    const payloads: Array<[string, any]> = [
      ["push", pushPayload({ fake, owner: "acme", repo: "web", branch: "feature/login" })],
      ["push", pushPayload({ fake, owner: "acme", repo: "web", branch: "gone", before: featureSha, deleted: true })],
      ["pull_request", pullRequestPayload("opened", { fake, owner: "acme", repo: "web", number: prNumber })],
      ["pull_request", pullRequestPayload("synchronize", { fake, owner: "acme", repo: "web", number: 99, headRef: "feature/login", headRepoFullName: "someone/web", before: mainSha })],
      ["issue_comment", issueCommentPayload({ fake, owner: "acme", repo: "web", issueNumber: prNumber, body: "/berth stop", user: "alice" })],
      ["installation", installationPayload("created", { fake, installationId })],
      ["installation_repositories", installationRepositoriesPayload("added", { fake, installationId, added: [{ owner: "acme", name: "web" }] })],
      ["delete", deletePayload({ fake, owner: "acme", repo: "web", ref: "feature/login" })],
      ["check_run", checkRunPayload("requested_action", { fake, owner: "acme", repo: "web", id: cr.id, requestedAction: "stop" })],
      ["check_run", checkRunPayload("rerequested", { fake, owner: "acme", repo: "web", id: cr.id })],
    ];
    for (const [event, payload] of payloads) {
      const body = JSON.stringify(payload);
      await webhooks.verifyAndReceive({ id: crypto.randomUUID(), name: event as any, payload: body, signature: sign(body, fake.webhookSecret) });
    }
    expect(seen).toEqual([
      "push.",
      "push.",
      "pull_request.opened",
      "pull_request.synchronize",
      "issue_comment.created",
      "installation.created",
      "installation_repositories.added",
      "delete.",
      "check_run.requested_action",
      "check_run.rerequested",
    ]);

    const [push, deleted, opened, sync, comment, installation, , del, action] = payloads.map((p) => p[1]);
    expect(push).toMatchObject({ ref: "refs/heads/feature/login", after: expect.stringMatching(/^[0-9a-f]{40}$/), installation: { id: installationId } });
    expect(push.repository).toMatchObject({ full_name: "acme/web", clone_url: `${fake.url}/acme/web.git`, owner: { login: "acme" } });
    expect(push.head_commit.id).toBe(push.after);
    expect(push.commits.length).toBeGreaterThan(0);
    expect(deleted).toMatchObject({ deleted: true, after: "0".repeat(40), head_commit: null, commits: [] });
    expect(opened.pull_request.head.repo.full_name).toBe("eve/web");
    expect(sync.pull_request.head).toMatchObject({ ref: "feature/login", repo: { full_name: "someone/web", fork: true } });
    expect(sync.after).toBe(sync.pull_request.head.sha);
    expect(comment.issue.pull_request).toBeTruthy();
    expect(comment.comment).toMatchObject({ body: "/berth stop", user: { login: "alice" }, author_association: "COLLABORATOR" });
    expect(fake.issueComments("acme", "web", prNumber).some((c) => c.id === comment.comment.id)).toBe(true);
    expect(installation.repositories.map((r: any) => r.full_name).sort()).toEqual(["acme/.github", "acme/web"]);
    expect(del).toMatchObject({ ref: "feature/login", ref_type: "branch" });
    expect(action).toMatchObject({ requested_action: { identifier: "stop" }, check_run: { id: cr.id, head_sha: cr.head_sha } });

    // over HTTP, through @octokit/webhooks' node middleware
    const server = http.createServer(createNodeMiddleware(webhooks, { path: "/hooks" }));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    try {
      const target = `http://127.0.0.1:${(server.address() as any).port}/hooks`;
      const okRes = await sendWebhook(target, "push", push, fake.webhookSecret, { deliveryId: "d-1" });
      expect(okRes.status).toBe(200);
      const badRes = await sendWebhook(target, "push", push, fake.webhookSecret, { badSignature: true });
      expect(badRes.status).toBeGreaterThanOrEqual(400);
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });

  it("assertDocumentedRequests accepts the traffic so far and rejects made-up endpoints and bodies", async () => {
    const apiTraffic = fake.requests.filter((r) => r.path.startsWith("/api/v3") && (r.status < 400 || r.status >= 500));
    const invalidReaction = fake.requests.filter((r) => (r.body as any)?.content === "thumbsup");
    expect(() => assertDocumentedRequests(invalidReaction)).toThrow(/thumbsup/);
    expect(apiTraffic.length).toBeGreaterThan(20);
    expect(() => assertDocumentedRequests(apiTraffic)).not.toThrow();
    expect(() => assertDocumentedRequests(apiTraffic, { mode: "all" })).not.toThrow();
    expect(() => assertDocumentedResponses(fake.requests)).not.toThrow();

    const { token } = fake.mintInstallationToken(installationId);
    fake.clearRequests();
    await fetch(`${fake.apiUrl}/repos/acme/web/workspaces/1/wake`, { method: "POST", headers: { authorization: `token ${token}` } });
    expect(() => assertDocumentedRequests(fake.requests)).toThrow(/workspaces\/1\/wake/);

    fake.clearRequests();
    await fetch(`${fake.apiUrl}/repos/acme/web/issues/1/comments`, {
      method: "POST",
      headers: { authorization: `token ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ body: "x", sticky: true }),
    });
    expect(() => assertDocumentedRequests(fake.requests)).toThrow(/sticky/);
  });
});

describe("fake GitHub lifecycle", () => {
  it("close() leaves no servers, sockets or child processes behind", async () => {
    const before = process.getActiveResourcesInfo().filter((r) => r !== "Timeout");
    const fake = await startFakeGitHub();
    const inst = fake.addInstallation({ login: "solo" });
    fake.createRepo("solo", "app", { installationId: inst.id });
    await fake.pushFiles("solo", "app", "main", { "a.txt": "a" });
    const { token } = fake.mintInstallationToken(inst.id);
    const res = await fetch(`${fake.apiUrl}/repos/solo/app`, { headers: { authorization: `token ${token}` } });
    expect(res.status).toBe(200);
    const ls = await git(["ls-remote", `http://x-access-token:${token}@${fake.host}/solo/app.git`]);
    expect(ls.code).toBe(0);
    const dir = fake.reposRoot;
    await fake.close();
    await new Promise((r) => setTimeout(r, 50));
    const after = process.getActiveResourcesInfo().filter((r) => r !== "Timeout");
    expect(after.filter((r) => r === "TCPServerWrap").length).toBeLessThanOrEqual(before.filter((r) => r === "TCPServerWrap").length);
    expect(after.filter((r) => r === "ProcessWrap").length).toBe(before.filter((r) => r === "ProcessWrap").length);
    await expect(fs.stat(dir)).rejects.toThrow();
  });
});
