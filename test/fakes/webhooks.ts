/**
 * Webhook payload builders for Berth's tests.
 *
 * Every payload starts from GitHub's own example in @octokit/webhooks-examples (so it has every
 * field a real delivery has), with URLs rewritten to the fake GitHub and the interesting fields
 * (repository, installation, sender, refs, shas, numbers...) taken from the fake's state.
 *
 *   const payload = pushPayload({ fake, owner: 'acme', repo: 'web', branch: 'main', after: sha });
 *   await sendWebhook(`${berthUrl}/api/github/webhooks`, 'push', payload, fake.webhookSecret);
 */
import crypto from "node:crypto";
import { createRequire } from "node:module";
import type { EmitterWebhookEvent } from "@octokit/webhooks";
import type { CommitInfo, FakeGitHub } from "./github.js";

const require = createRequire(import.meta.url);

type Json = Record<string, any>;
type EventName = EmitterWebhookEvent["name"];
export type WebhookPayload<E extends EventName> = EmitterWebhookEvent<E>["payload"];
export type UserRef = string | { login: string; type?: "User" | "Bot" | "Organization"; id?: number };

export const ZERO_SHA = "0000000000000000000000000000000000000000";

interface Definition {
  name: string;
  examples: Json[];
}
let definitions: Definition[] | null = null;

/** A deep copy of GitHub's example payload for `event` (and `action` when given). */
export function examplePayload(event: string, action?: string, pick?: (p: Json) => boolean): Json {
  definitions ??= require("@octokit/webhooks-examples") as Definition[];
  const def = definitions.find((d) => d.name === event);
  if (!def) throw new Error(`no webhook examples for event ${event}`);
  const candidates = def.examples.filter((e) => action === undefined || e.action === action);
  const chosen = (pick ? candidates.find(pick) : undefined) ?? candidates[0];
  if (!chosen) throw new Error(`no webhook example for ${event}.${action}`);
  return structuredClone(chosen);
}

/** Replace github.com URLs of an example with the fake's. */
function rewrite<T>(value: T, fake: FakeGitHub): T {
  if (typeof value === "string") {
    return value
      .replace(/https:\/\/api\.github\.com/g, fake.apiUrl)
      .replace(/https:\/\/(uploads\.)?github\.com/g, fake.url)
      .replace(/https:\/\/avatars\d?\.githubusercontent\.com/g, `${fake.url}/avatars`) as T;
  }
  if (Array.isArray(value)) return value.map((v) => rewrite(v, fake)) as T;
  if (value && typeof value === "object") {
    const out: Json = {};
    for (const [k, v] of Object.entries(value)) out[k] = rewrite(v, fake);
    return out as T;
  }
  return value;
}

function userJson(fake: FakeGitHub, user: UserRef | undefined, fallback: string): Json {
  const ref = user ?? fallback;
  const login = typeof ref === "string" ? ref : ref.login;
  if (login.toLowerCase() === fake.botUser.login.toLowerCase()) return fake.json.user(fake.botUser.login);
  if (!fake.getUser(login) && typeof ref !== "string") fake.addUser(login, { id: ref.id, type: ref.type === "Organization" ? "Organization" : "User" });
  const json = fake.json.user(login);
  if (typeof ref !== "string" && ref.type) json.type = ref.type;
  return json;
}

function defaultSender(fake: FakeGitHub, owner: string): string {
  const u = fake.getUser(owner);
  return u && u.type === "User" ? u.login : "developer";
}

function installationRef(fake: FakeGitHub, owner: string, repo: string, installationId?: number): Json | undefined {
  const id = installationId ?? fake.getRepo(owner, repo)?.installationId ?? undefined;
  if (id == null) return undefined;
  return { id, node_id: Buffer.from(`030:Integration::Installation${id}`).toString("base64") };
}

/** The webhook-shaped repository: the example's keys, the fake's values. */
function webhookRepository(fake: FakeGitHub, owner: string, repo: string, example: Json, pushStyle = false): Json {
  const rest = fake.json.repository(owner, repo);
  const ex = rewrite(example, fake);
  const out: Json = {};
  for (const key of Object.keys(ex)) out[key] = key in rest ? rest[key] : ex[key];
  for (const key of ["id", "node_id", "name", "full_name", "private", "owner", "html_url", "url", "clone_url", "default_branch", "visibility", "fork"]) {
    out[key] = rest[key];
  }
  if ("custom_properties" in out) out.custom_properties = {};
  if (pushStyle) {
    const secs = (iso: string) => Math.floor(new Date(iso).getTime() / 1000);
    out.created_at = secs(rest.created_at);
    out.pushed_at = secs(rest.pushed_at);
    out.owner = { name: rest.owner.login, email: null, ...rest.owner };
    out.stargazers = 0;
    out.master_branch = rest.default_branch;
    if (rest.owner.type === "Organization") out.organization = rest.owner.login;
  }
  return out;
}

function organizationFor(fake: FakeGitHub, owner: string): Json | undefined {
  const u = fake.getUser(owner);
  if (!u || u.type !== "Organization") return undefined;
  const j = fake.json.user(u.login);
  return {
    login: u.login,
    id: u.id,
    node_id: u.nodeId,
    url: j.url,
    repos_url: j.repos_url,
    events_url: j.events_url,
    hooks_url: `${j.url}/hooks`,
    issues_url: `${j.url}/issues`,
    members_url: `${j.url}/members{/member}`,
    public_members_url: `${j.url}/public_members{/member}`,
    avatar_url: j.avatar_url,
    description: null,
  };
}

function envelope(fake: FakeGitHub, owner: string, repo: string, installationId: number | undefined, sender: UserRef | undefined, example: Json, pushStyle = false): Json {
  const out: Json = {
    repository: webhookRepository(fake, owner, repo, example.repository ?? fake.json.repository(owner, repo), pushStyle),
    sender: userJson(fake, sender, defaultSender(fake, owner)),
  };
  const org = organizationFor(fake, owner);
  if (org) out.organization = org;
  const inst = installationRef(fake, owner, repo, installationId);
  if (inst) out.installation = inst;
  return out;
}

// ---------------------------------------------------------------------------
// push
// ---------------------------------------------------------------------------

export interface PushOptions {
  fake: FakeGitHub;
  owner: string;
  repo: string;
  branch: string;
  /** default: the parent of `after` (or ZERO_SHA when created) */
  before?: string;
  /** default: the current tip of `branch` in the fake (ZERO_SHA when deleted) */
  after?: string;
  /** default: the repository's installation */
  installationId?: number;
  /** branch deleted: after = ZERO_SHA, no commits */
  deleted?: boolean;
  /** branch created (default: before === ZERO_SHA) */
  created?: boolean;
  forced?: boolean;
  sender?: UserRef;
}

function commitJson(fake: FakeGitHub, owner: string, repo: string, info: CommitInfo): Json {
  const username = (email: string) => {
    const u = fake.listUsers().find((x) => x.email && x.email.toLowerCase() === email.toLowerCase());
    return u ? { username: u.login } : {};
  };
  return {
    id: info.sha,
    tree_id: info.tree,
    distinct: true,
    message: info.message,
    timestamp: info.author.date,
    url: `${fake.url}/${owner}/${repo}/commit/${info.sha}`,
    author: { name: info.author.name, email: info.author.email, ...username(info.author.email) },
    committer: { name: info.committer.name, email: info.committer.email, ...username(info.committer.email) },
    added: info.added,
    removed: info.removed,
    modified: info.modified,
  };
}

export function pushPayload(o: PushOptions): WebhookPayload<"push"> {
  const { fake, owner, repo, branch } = o;
  const example = examplePayload("push", undefined, (p) => p.ref.startsWith("refs/heads/") && !!p.installation);
  const deleted = o.deleted ?? false;
  const after = deleted ? ZERO_SHA : o.after ?? fake.commitInfo(owner, repo, `refs/heads/${branch}`)?.sha;
  if (!after) throw new Error(`pushPayload: branch ${branch} has no commits in ${owner}/${repo}; pass after`);
  const afterInfo = deleted ? null : fake.commitInfo(owner, repo, after);
  let before = o.before;
  if (before === undefined) {
    if (o.created) before = ZERO_SHA;
    else if (deleted) throw new Error("pushPayload: deleted pushes need `before` (the sha the branch pointed at)");
    else before = afterInfo?.parents[0] ?? ZERO_SHA;
  }
  const created = o.created ?? (before === ZERO_SHA && !deleted);

  const commits: Json[] = [];
  if (!deleted) {
    if (afterInfo) {
      if (created || before === ZERO_SHA) {
        commits.push(commitJson(fake, owner, repo, afterInfo));
      } else {
        let cur: CommitInfo | null = afterInfo;
        while (cur && cur.sha !== before && commits.length < 20) {
          commits.unshift(commitJson(fake, owner, repo, cur));
          cur = cur.parents[0] ? fake.commitInfo(owner, repo, cur.parents[0]) : null;
        }
      }
    } else {
      commits.push({ ...rewrite(example.head_commit, fake), id: after, url: `${fake.url}/${owner}/${repo}/commit/${after}` });
    }
  }
  const senderJson = userJson(fake, o.sender, defaultSender(fake, owner));
  const html = `${fake.url}/${owner}/${repo}`;
  const short = (s: string) => s.slice(0, 12);
  const payload: Json = {
    ref: `refs/heads/${branch}`,
    before,
    after,
    ...envelope(fake, owner, repo, o.installationId, o.sender, example, true),
    pusher: { name: senderJson.login, email: `${senderJson.id}+${senderJson.login}@users.noreply.${fake.host.split(":")[0]}` },
    created,
    deleted,
    forced: o.forced ?? false,
    base_ref: null,
    compare: created ? `${html}/compare/${branch}` : `${html}/compare/${short(before)}...${short(after)}`,
    commits,
    head_commit: deleted ? null : commits[commits.length - 1] ?? null,
  };
  payload.sender = senderJson;
  return payload as WebhookPayload<"push">;
}

// ---------------------------------------------------------------------------
// pull_request
// ---------------------------------------------------------------------------

export interface PullRequestOptions {
  fake: FakeGitHub;
  owner: string;
  repo: string;
  number: number;
  headRef?: string;
  headSha?: string;
  /** "owner/name" of the head repository, for pull requests from forks */
  headRepoFullName?: string;
  baseRef?: string;
  baseSha?: string;
  /** PR author */
  user?: UserRef;
  title?: string;
  body?: string | null;
  draft?: boolean;
  merged?: boolean;
  state?: "open" | "closed";
  installationId?: number;
  sender?: UserRef;
  /** synchronize: previous head sha */
  before?: string;
}

export type PullRequestAction = "opened" | "synchronize" | "reopened" | "closed" | "edited" | "ready_for_review" | "converted_to_draft" | "labeled";

export function pullRequestPayload(action: PullRequestAction | string, o: PullRequestOptions): WebhookPayload<"pull_request"> {
  const { fake, owner, repo, number } = o;
  const example = examplePayload("pull_request", action, (p) => !!p.installation);
  const stored = fake.getPullRequest(owner, repo, number);
  let pr: Json;
  if (stored) {
    pr = fake.json.pullRequest(owner, repo, number);
  } else {
    pr = rewrite(example.pull_request, fake);
    const baseRepo = fake.json.repository(owner, repo);
    const a = `${fake.apiUrl}/repos/${owner}/${repo}`;
    const h = `${fake.url}/${owner}/${repo}`;
    Object.assign(pr, {
      url: `${a}/pulls/${number}`,
      id: 80000000 + number,
      node_id: Buffer.from(`011:PullRequest${number}`).toString("base64"),
      html_url: `${h}/pull/${number}`,
      diff_url: `${h}/pull/${number}.diff`,
      patch_url: `${h}/pull/${number}.patch`,
      issue_url: `${a}/issues/${number}`,
      commits_url: `${a}/pulls/${number}/commits`,
      review_comments_url: `${a}/pulls/${number}/comments`,
      review_comment_url: `${a}/pulls/comments{/number}`,
      comments_url: `${a}/issues/${number}/comments`,
      number,
      state: "open",
      merged: false,
      merged_at: null,
      closed_at: null,
      merge_commit_sha: null,
      draft: false,
      labels: [],
      assignee: null,
      assignees: [],
      requested_reviewers: [],
      requested_teams: [],
      milestone: null,
    });
    pr.base = { ...pr.base, repo: baseRepo, user: baseRepo.owner, ref: baseRepo.default_branch, label: `${owner}:${baseRepo.default_branch}` };
    pr.head = { ...pr.head, repo: baseRepo, user: baseRepo.owner };
    pr.user = userJson(fake, o.user, defaultSender(fake, owner));
  }
  if (o.headRepoFullName) {
    const [hOwner, hName] = o.headRepoFullName.split("/");
    let headRepo: Json;
    if (fake.getRepo(hOwner, hName)) headRepo = fake.json.repository(hOwner, hName);
    else {
      const base = fake.json.repository(owner, repo);
      const a = `${fake.apiUrl}/repos/${hOwner}/${hName}`;
      headRepo = {
        ...base,
        id: 600000 + (crypto.randomBytes(2).readUInt16BE(0) % 100000),
        name: hName,
        full_name: `${hOwner}/${hName}`,
        owner: userJson(fake, hOwner, hOwner),
        fork: true,
        private: false,
        url: a,
        html_url: `${fake.url}/${hOwner}/${hName}`,
        clone_url: `${fake.url}/${hOwner}/${hName}.git`,
      };
    }
    pr.head = { ...pr.head, repo: headRepo, user: headRepo.owner };
  }
  if (o.headRef !== undefined) pr.head.ref = o.headRef;
  if (o.headSha !== undefined) pr.head.sha = o.headSha;
  if (!stored && o.headSha === undefined && o.headRef !== undefined) {
    const [hOwner, hName] = (pr.head.repo?.full_name ?? `${owner}/${repo}`).split("/");
    const tip = fake.commitInfo(hOwner, hName, `refs/heads/${o.headRef}`);
    if (tip) pr.head.sha = tip.sha;
  }
  pr.head.label = `${pr.head.repo?.owner?.login ?? owner}:${pr.head.ref}`;
  if (o.baseRef !== undefined) {
    pr.base.ref = o.baseRef;
    pr.base.label = `${owner}:${o.baseRef}`;
  }
  if (o.baseSha !== undefined) pr.base.sha = o.baseSha;
  else if (!stored) pr.base.sha = fake.commitInfo(owner, repo, `refs/heads/${pr.base.ref}`)?.sha ?? pr.base.sha;
  if (o.user !== undefined) pr.user = userJson(fake, o.user, owner);
  if (o.title !== undefined) pr.title = o.title;
  if (o.body !== undefined) pr.body = o.body;
  if (o.draft !== undefined) pr.draft = o.draft;
  const now = new Date().toISOString().replace(/\.\d{3}Z$/, "Z");
  if (action === "closed" || o.state === "closed") {
    pr.state = "closed";
    pr.closed_at ??= now;
  } else if (o.state) pr.state = o.state;
  if (o.merged !== undefined) {
    pr.merged = o.merged;
    pr.merged_at = o.merged ? pr.merged_at ?? now : null;
  }
  pr.statuses_url = `${fake.apiUrl}/repos/${owner}/${repo}/statuses/${pr.head.sha}`;
  if (pr._links?.statuses) pr._links.statuses.href = pr.statuses_url;
  const payload: Json = {
    action,
    number,
    pull_request: pr,
    ...envelope(fake, owner, repo, o.installationId, o.sender ?? pr.user.login, example),
  };
  if (action === "synchronize") {
    payload.before = o.before ?? example.before;
    payload.after = pr.head.sha;
  }
  return payload as WebhookPayload<"pull_request">;
}

// ---------------------------------------------------------------------------
// issue_comment
// ---------------------------------------------------------------------------

export interface IssueCommentOptions {
  fake: FakeGitHub;
  owner: string;
  repo: string;
  issueNumber: number;
  /** comment text (for "created" the comment is stored in the fake so Berth can react to it) */
  body?: string;
  /** comment author; logins ending in [bot] are Bots */
  user?: UserRef;
  action?: "created" | "edited" | "deleted";
  /** use an existing comment of the fake instead of creating one */
  commentId?: number;
  /** default true: the issue is a pull request */
  isPullRequest?: boolean;
  authorAssociation?: string;
  installationId?: number;
  sender?: UserRef;
  /** edited: previous body */
  previousBody?: string;
}

export function issueCommentPayload(o: IssueCommentOptions): WebhookPayload<"issue_comment"> {
  const { fake, owner, repo, issueNumber } = o;
  const action = o.action ?? "created";
  const isPr = o.isPullRequest ?? true;
  const example = examplePayload("issue_comment", action);
  const login = o.user === undefined ? defaultSender(fake, owner) : typeof o.user === "string" ? o.user : o.user.login;
  if (o.user !== undefined && typeof o.user !== "string" && !fake.getUser(o.user.login)) {
    fake.addUser(o.user.login, { id: o.user.id, type: o.user.type === "Organization" ? "Organization" : "User" });
  }
  let commentId = o.commentId;
  if (commentId === undefined) {
    if (o.body === undefined) throw new Error("issueCommentPayload: body or commentId required");
    commentId = fake.addComment(owner, repo, issueNumber, login, o.body).id;
  }
  const comment: Json = fake.json.comment(commentId);
  if (o.body !== undefined) comment.body = o.body;
  if (o.user !== undefined && typeof o.user !== "string" && o.user.type) comment.user.type = o.user.type;
  if (o.authorAssociation) comment.author_association = o.authorAssociation;

  const pr = isPr ? fake.getPullRequest(owner, repo, issueNumber) : undefined;
  const a = `${fake.apiUrl}/repos/${owner}/${repo}`;
  const h = `${fake.url}/${owner}/${repo}`;
  const issue: Json = rewrite(example.issue, fake);
  Object.assign(issue, {
    url: `${a}/issues/${issueNumber}`,
    repository_url: a,
    labels_url: `${a}/issues/${issueNumber}/labels{/name}`,
    comments_url: `${a}/issues/${issueNumber}/comments`,
    events_url: `${a}/issues/${issueNumber}/events`,
    html_url: `${h}/${isPr ? "pull" : "issues"}/${issueNumber}`,
    id: (pr?.id ?? 70000000) + issueNumber,
    node_id: Buffer.from(`05:Issue${issueNumber}`).toString("base64"),
    number: issueNumber,
    title: pr?.title ?? `Issue ${issueNumber}`,
    user: pr ? fake.json.user(pr.user.login) : userJson(fake, login, login),
    labels: [],
    state: pr?.state ?? "open",
    assignee: null,
    assignees: [],
    milestone: null,
    comments: fake.issueComments(owner, repo, issueNumber).length,
    body: pr?.body ?? null,
    closed_at: pr?.closed_at ?? null,
  });
  if (isPr) {
    issue.pull_request = {
      url: `${a}/pulls/${issueNumber}`,
      html_url: `${h}/pull/${issueNumber}`,
      diff_url: `${h}/pull/${issueNumber}.diff`,
      patch_url: `${h}/pull/${issueNumber}.patch`,
      merged_at: pr?.merged_at ?? null,
    };
  } else {
    delete issue.pull_request;
  }
  const payload: Json = {
    action,
    issue,
    comment,
    ...envelope(fake, owner, repo, o.installationId, o.sender ?? o.user ?? login, example),
  };
  if (action === "edited") payload.changes = { body: { from: o.previousBody ?? "" } };
  return payload as WebhookPayload<"issue_comment">;
}

// ---------------------------------------------------------------------------
// installation / installation_repositories
// ---------------------------------------------------------------------------

export interface RepoName {
  owner: string;
  name: string;
}

function miniRepo(fake: FakeGitHub, r: RepoName): Json {
  const j = fake.json.repository(r.owner, r.name);
  return { id: j.id, node_id: j.node_id, name: j.name, full_name: j.full_name, private: j.private };
}

function reposOfInstallation(fake: FakeGitHub, installationId: number): RepoName[] {
  return fake.listRepos().filter((r) => r.installationId === installationId).map((r) => ({ owner: r.owner, name: r.name }));
}

export interface InstallationOptions {
  fake: FakeGitHub;
  installationId: number;
  /** repositories in the payload (default: those of the installation, when the fake knows them) */
  repositories?: RepoName[];
  sender?: UserRef;
}

export function installationPayload(
  action: "created" | "deleted" | "suspend" | "unsuspend" | "new_permissions_accepted",
  o: InstallationOptions,
): WebhookPayload<"installation"> {
  const { fake } = o;
  const example = examplePayload("installation", action);
  const inst = fake.getInstallation(o.installationId);
  if (!inst) throw new Error(`installationPayload: no installation ${o.installationId}`);
  const repos = o.repositories ?? reposOfInstallation(fake, o.installationId);
  const payload: Json = {
    action,
    installation: fake.json.installation(o.installationId),
    repositories: repos.map((r) => miniRepo(fake, r)),
    requester: null,
    sender: userJson(fake, o.sender, inst.account.type === "User" ? inst.account.login : "developer"),
  };
  void example;
  return payload as WebhookPayload<"installation">;
}

export interface InstallationRepositoriesOptions {
  fake: FakeGitHub;
  installationId: number;
  added?: RepoName[];
  removed?: RepoName[];
  sender?: UserRef;
}

export function installationRepositoriesPayload(action: "added" | "removed", o: InstallationRepositoriesOptions): WebhookPayload<"installation_repositories"> {
  const { fake } = o;
  const inst = fake.getInstallation(o.installationId);
  if (!inst) throw new Error(`installationRepositoriesPayload: no installation ${o.installationId}`);
  const payload: Json = {
    action,
    installation: fake.json.installation(o.installationId),
    repository_selection: inst.repositorySelection,
    repositories_added: (o.added ?? []).map((r) => miniRepo(fake, r)),
    repositories_removed: (o.removed ?? []).map((r) => miniRepo(fake, r)),
    requester: null,
    sender: userJson(fake, o.sender, inst.account.type === "User" ? inst.account.login : "developer"),
  };
  return payload as WebhookPayload<"installation_repositories">;
}

// ---------------------------------------------------------------------------
// delete
// ---------------------------------------------------------------------------

export interface DeleteOptions {
  fake: FakeGitHub;
  owner: string;
  repo: string;
  /** short ref name, e.g. "feature-x" (GitHub sends no refs/heads/ prefix) */
  ref: string;
  ref_type?: "branch" | "tag";
  installationId?: number;
  sender?: UserRef;
}

export function deletePayload(o: DeleteOptions): WebhookPayload<"delete"> {
  const { fake, owner, repo } = o;
  const example = examplePayload("delete", undefined, (p) => !!p.installation);
  const payload: Json = {
    ref: o.ref.replace(/^refs\/(heads|tags)\//, ""),
    ref_type: o.ref_type ?? "branch",
    pusher_type: "user",
    ...envelope(fake, owner, repo, o.installationId, o.sender, example),
  };
  return payload as WebhookPayload<"delete">;
}

// ---------------------------------------------------------------------------
// check_run
// ---------------------------------------------------------------------------

export interface CheckRunOptions {
  fake: FakeGitHub;
  owner: string;
  repo: string;
  /** check run id; when the fake has it, its state fills the payload */
  id: number;
  head_sha?: string;
  external_id?: string;
  name?: string;
  /** requested_action: the action button's identifier */
  requestedAction?: string;
  installationId?: number;
  sender?: UserRef;
}

export function checkRunPayload(
  action: "rerequested" | "requested_action" | "created" | "completed",
  o: CheckRunOptions,
): WebhookPayload<"check_run"> {
  const { fake, owner, repo } = o;
  const example = examplePayload("check_run", action);
  const stored = fake.getCheckRun(o.id);
  const cr: Json = stored ? fake.json.checkRun(o.id) : rewrite(example.check_run, fake);
  cr.id = o.id;
  if (o.head_sha !== undefined) cr.head_sha = o.head_sha;
  if (o.external_id !== undefined) cr.external_id = o.external_id;
  if (o.name !== undefined) cr.name = o.name;
  if (!stored) {
    const a = `${fake.apiUrl}/repos/${owner}/${repo}`;
    cr.url = `${a}/check-runs/${o.id}`;
    cr.html_url = `${fake.url}/${owner}/${repo}/runs/${o.id}`;
    cr.app = fake.json.app();
    cr.pull_requests = [];
  }
  const suiteExample = rewrite(example.check_run.check_suite, fake);
  const headBranch =
    fake.pullRequests(owner, repo).find((p) => p.head.sha === cr.head_sha)?.head.ref ?? null;
  cr.check_suite = {
    ...suiteExample,
    id: stored?.check_suite.id ?? suiteExample.id,
    head_sha: cr.head_sha,
    head_branch: headBranch,
    after: cr.head_sha,
    url: `${fake.apiUrl}/repos/${owner}/${repo}/check-suites/${stored?.check_suite.id ?? suiteExample.id}`,
    app: fake.json.app(),
    pull_requests: cr.pull_requests,
  };
  const payload: Json = {
    action,
    check_run: cr,
    ...envelope(fake, owner, repo, o.installationId, o.sender, example),
  };
  if (action === "requested_action") {
    if (!o.requestedAction) throw new Error("checkRunPayload: requested_action needs requestedAction (the identifier)");
    payload.requested_action = { identifier: o.requestedAction };
  }
  return payload as WebhookPayload<"check_run">;
}

// ---------------------------------------------------------------------------
// signing & delivery
// ---------------------------------------------------------------------------

/** `sha256=<hex hmac>` as in X-Hub-Signature-256 */
export function sign(body: string, secret: string): string {
  return `sha256=${crypto.createHmac("sha256", secret).update(body).digest("hex")}`;
}

export interface SendWebhookOptions {
  deliveryId?: string;
  /** sign with a wrong secret */
  badSignature?: boolean;
  /** extra / overriding headers */
  headers?: Record<string, string>;
}

/** Headers and body GitHub would send for this delivery. */
export function webhookRequest(event: string, payload: unknown, secret: string, opts: SendWebhookOptions = {}): { headers: Record<string, string>; body: string } {
  const body = JSON.stringify(payload);
  const usedSecret = opts.badSignature ? `${secret}-wrong` : secret;
  const p = payload as Json;
  const headers: Record<string, string> = {
    "content-type": "application/json",
    "user-agent": "GitHub-Hookshot/fake",
    "x-github-event": event,
    "x-github-delivery": opts.deliveryId ?? crypto.randomUUID(),
    "x-hub-signature": `sha1=${crypto.createHmac("sha1", usedSecret).update(body).digest("hex")}`,
    "x-hub-signature-256": sign(body, usedSecret),
    "x-github-hook-id": "1",
    "x-github-hook-installation-target-type": "integration",
    "x-github-hook-installation-target-id": String(p?.installation?.app_id ?? ""),
    ...opts.headers,
  };
  if (!headers["x-github-hook-installation-target-id"]) delete headers["x-github-hook-installation-target-id"];
  return { headers, body };
}

/** POST a webhook delivery (JSON, signed) to `targetUrl`. */
export async function sendWebhook(targetUrl: string, event: string, payload: unknown, secret: string, opts: SendWebhookOptions = {}): Promise<Response> {
  const { headers, body } = webhookRequest(event, payload, secret, opts);
  return fetch(targetUrl, { method: "POST", headers, body });
}
