import { randomBytes } from 'node:crypto';
import type { Probot } from 'probot';
// ssh2 is CommonJS: Node's ESM loader gives it as one default export
import ssh2, { type AuthContext, type Connection, type PseudoTtyInfo, type ServerChannel, type Session } from 'ssh2';
import type { Logger } from '../../lib/log.js';
import type { AppDeps } from '../deps.js';
import { AccessChecker } from '../auth/access.js';
import { IdeContainers } from '../ide/containers.js';
import type { WorkspaceAccess, WorkspaceShell } from '../../lib/workspace-access.js';
import type { GitCredentials } from '../ide/git-credentials.js';
import { wakeIfStopped } from '../gateway/workspace-state-page.js';
import { ActivityRecorder } from '../gateway/activity.js';
import { withTimeout } from './container-exec.js';
import { fingerprintOf, sshHostKey } from './host-key.js';
import { PersonKeys } from './person-keys.js';
import { runShell, type RunningShell } from './shell-session.js';
import { serveSftp } from './sftp.js';
import { forward, forwardInside, isLoopback } from './forwarding.js';

const { Server, utils } = ssh2;

/** A client must have authenticated within this, or it is disconnected. */
const AUTH_TIMEOUT_MS = 30_000;
/** finding the person and their access, GitHub included */
const AUTHORIZE_TIMEOUT_MS = 20_000;
/** a stopped workspace woken by a connection must be running within this */
export const SSH_WAKE_TIMEOUT_MS = 180_000;
/** an open SSH connection, silent or not, is activity at least this often (shorter for short idle timeouts) */
const KEEP_AWAKE_EVERY_MS = 10_000;
/** how often an open connection's person is checked again for write access */
const ACCESS_RECHECK_MS = 60_000;
const SLUG = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

interface Admitted {
  workspaceId: string;
  slug: string;
  previewService: string | null;
  idleTimeoutSec: number;
  repository: { owner: string; name: string; installationId: bigint; fullName: string };
  login: string;
  userId: bigint;
  name: string | null;
}

type Verdict = { ok: true; admitted: Admitted } | { ok: false; reason: string };

/**
 * Berth's SSH server (BERTH_SSH_PORT): `ssh <slug>@<host> -p <port>` opens a shell in the
 * workspace, for people and for desktop IDEs (VS Code Remote-SSH, JetBrains Gateway). The
 * user name is the workspace's slug; the public key names the person: one of the people who
 * signed in to Berth whose GitHub account lists that key, and who has write access to the
 * repository (the same rule as the browser IDE). Every refusal looks the same to the client
 * (an unknown workspace, an unknown key, too little access) and is logged with its reason.
 *
 * A session runs in the workspace's main container as the browser terminal does (shell, exec,
 * SFTP), `ssh -L` reaches only the workspace's own containers, a stopped workspace wakes on
 * connect, and an open connection keeps the workspace from being stopped as idle.
 */
export class SshServer {
  private readonly server: InstanceType<typeof Server>;
  private readonly persons: PersonKeys;
  private readonly access: AccessChecker;
  private readonly containers: IdeContainers;
  private readonly clients = new Set<Connection>();
  private readonly activity: ActivityRecorder;
  readonly fingerprint: string;

  constructor(
    private readonly deps: AppDeps,
    private readonly probot: Probot,
    private readonly log: Logger,
    /** git as the person: credentials (app/ide/git-credentials.ts) and the port workspaces reach Berth's web on */
    private readonly opts: { git?: GitCredentials; berthPort?: number; workspaces: WorkspaceAccess },
  ) {
    const key = sshHostKey(deps.config);
    this.fingerprint = key.fingerprint;
    this.persons = new PersonKeys(deps.db);
    this.access = new AccessChecker(probot);
    this.containers = new IdeContainers(opts.workspaces);
    this.activity = new ActivityRecorder(deps);
    this.server = new Server({ hostKeys: [key.privateKey], ident: 'Berth' }, (client, info) => this.connection(client, info.ip));
    this.server.on('error', (err: Error) => this.log.error({ err }, 'SSH server error'));
  }

  /** Listens; resolves with the port (useful with port 0 in tests). */
  listen(port: number, host: string): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve((this.server.address() as { port: number }).port);
      });
    });
  }

  async close(): Promise<void> {
    for (const c of this.clients) c.end();
    this.activity.close();
    // a client that does not answer the goodbye does not hold Berth's shutdown
    await Promise.race([new Promise<void>((r) => this.server.close(() => r())), new Promise((r) => setTimeout(r, 3_000).unref())]);
  }

  // --- authentication ---------------------------------------------------------------------------

  private connection(client: Connection, remote: string) {
    this.clients.add(client);
    let admitted: Admitted | null = null;
    const verdicts = new Map<string, Promise<Verdict>>();
    const authTimer = setTimeout(() => client.end(), AUTH_TIMEOUT_MS);
    client.on('error', () => {}); // a client that resets the connection ends only its connection
    client.on('close', () => {
      clearTimeout(authTimer);
      this.clients.delete(client);
    });
    client.on('authentication', (ctx: AuthContext) => {
      if (ctx.method !== 'publickey') return ctx.reject(['publickey']);
      const fingerprint = fingerprintOf(ctx.key.data);
      const key = `${ctx.username}\0${fingerprint}`;
      // the client asks whether a key would do, then signs with it: one look-up for both
      let verdict = verdicts.get(key);
      if (!verdict) {
        verdict = withTimeout(this.authorize(ctx.username, ctx.key.data), AUTHORIZE_TIMEOUT_MS, 'finding the person').catch((err: Error) => ({ ok: false as const, reason: `the look-up failed: ${err.message}` }));
        verdicts.set(key, verdict);
        void verdict.then((v) => {
          if (!v.ok) this.log.info({ workspace: ctx.username.slice(0, 80), key: fingerprint, remote, reason: v.reason }, 'SSH connection refused');
        });
      }
      void verdict.then((v) => {
        if (!v.ok) return ctx.reject(['publickey']);
        if (!ctx.signature) return ctx.accept();
        const parsed = utils.parseKey(ctx.key.data);
        if (parsed instanceof Error || Array.isArray(parsed) || !ctx.blob || !parsed.verify(ctx.blob, ctx.signature, ctx.hashAlgo)) return ctx.reject(['publickey']);
        admitted = v.admitted;
        ctx.accept();
      });
    });
    client.on('ready', () => {
      clearTimeout(authTimer);
      if (!admitted) return client.end();
      this.log.info({ workspace: admitted.slug, login: admitted.login, remote }, 'SSH connection opened');
      this.serve(client, admitted);
    });
  }

  /** The same answer to the client whatever the reason; the reason is for the log. */
  private async authorize(username: string, keyData: Buffer): Promise<Verdict> {
    if (!SLUG.test(username)) return { ok: false, reason: 'not a workspace name' };
    const ws = await this.deps.db.workspace.findUnique({
      where: { slug: username },
      select: { id: true, slug: true, state: true, previewService: true, idleTimeoutSec: true, repository: { select: { owner: true, name: true, installationId: true, fullName: true } } },
    });
    if (!ws || ws.state === 'deleted') return { ok: false, reason: 'no such workspace' };
    const octokit = await this.probot.auth(Number(ws.repository.installationId));
    const login = await this.persons.personOf(octokit, { data: keyData });
    if (!login) return { ok: false, reason: 'the key belongs to nobody who signed in to Berth' };
    const access = await this.access.access(login, ws.repository);
    if (access !== 'write') return { ok: false, reason: `${login} has ${access} access to ${ws.repository.fullName}, not write` };
    const user = await this.deps.db.user.findUnique({ where: { login }, select: { id: true, name: true } });
    if (!user) return { ok: false, reason: `${login} is no longer known` };
    return {
      ok: true,
      admitted: { workspaceId: ws.id, slug: ws.slug, previewService: ws.previewService, idleTimeoutSec: ws.idleTimeoutSec, repository: ws.repository, login, userId: user.id, name: user.name },
    };
  }

  // --- an admitted connection ----------------------------------------------------------------------

  private serve(client: Connection, who: Admitted) {
    const touch = () => this.activity.touch({ id: who.workspaceId, idleTimeoutSec: who.idleTimeoutSec });
    // The connection's activity is in the database before any of its channels looks at the
    // workspace: an idle stop due at this moment then either sees it and lets the workspace be,
    // or has already stopped it and the channel wakes it; never a shell in containers about to go.
    const recorded = this.activity.recordNow({ id: who.workspaceId });
    const ready = (say: (line: string) => void) => recorded.then(() => this.ready(who, say));
    // An open connection is someone working, typing or not (an editor attached over SSH).
    const keepAwake = setInterval(touch, Math.max(1_000, Math.min(KEEP_AWAKE_EVERY_MS, (who.idleTimeoutSec * 1000) / 3)));
    const recheck = setInterval(() => {
      this.access.access(who.login, who.repository).then(
        (access) => {
          if (access === 'write') return;
          this.log.info({ workspace: who.slug, login: who.login, access }, 'SSH connection closed: write access to the repository is gone');
          client.end();
        },
        () => {}, // GitHub is away: asked again at the next check
      );
    }, ACCESS_RECHECK_MS);
    client.on('close', () => {
      clearInterval(keepAwake);
      clearInterval(recheck);
    });

    client.on('session', (accept) => this.session(accept(), who, touch, ready));
    client.on('tcpip', (accept, reject, info) => {
      void (async () => {
        const container = await ready(() => {});
        const host = await this.opts.workspaces.forwardTarget(who.workspaceId, container.id, info.destIP);
        if (!host) {
          this.log.info({ workspace: who.slug, login: who.login, destination: `${info.destIP}:${info.destPort}` }, 'SSH port forwarding refused: not one of the workspace’s containers');
          return reject();
        }
        // a server on the container's own loopback (VS Code's, a dev server on 127.0.0.1) is not
        // reachable at its address: such a connection goes through a relay inside the container
        const inside = () => void forwardInside(container, info.destPort, accept, touch).catch(() => reject());
        forward(host, info.destPort, accept, isLoopback(info.destIP) ? inside : reject, touch);
      })().catch(() => reject());
    });
  }

  private session(session: Session, who: Admitted, touch: () => void, ready: (say: (line: string) => void) => Promise<WorkspaceShell>) {
    let pty: PseudoTtyInfo | null = null;
    let shell: RunningShell | null = null;
    session.on('pty', (accept, _reject, info) => {
      pty = info;
      accept?.();
    });
    session.on('window-change', (accept, _reject, info) => {
      if (shell) shell.resize(info.cols, info.rows);
      else if (pty) pty = { ...pty, cols: info.cols, rows: info.rows };
      accept?.();
    });
    const start = (channel: ServerChannel, command: string | null) => {
      const sessionId = randomBytes(16).toString('hex');
      ready((line) => channel.stderr.write(`${line}\r\n`))
        .then(async (container) => runShell(channel, { container, command, pty, env: await this.shellEnvironment(who, sessionId, container, channel), sessionId, onActivity: touch }))
        .then(
          (running) => (shell = running),
          (err: Error) => {
            channel.stderr.write(`berth: ${err.message}\r\n`);
            channel.exit(1);
            channel.end();
          },
        );
    };
    session.on('shell', (accept) => start(accept(), null));
    session.on('exec', (accept, _reject, info) => start(accept(), info.command));
    session.on('sftp', (accept) => {
      serveSftp(accept(), ready(() => {}), { env: this.environment(who, randomBytes(16).toString('hex')), onActivity: touch });
    });
  }

  /**
   * A shell's environment: the person's git identity and credential helper, as the browser
   * terminal gets them (app/ide/git-credentials.ts): git pull and push use the GitHub token of
   * their last sign-in to Berth; the handle dies with the channel.
   */
  private async shellEnvironment(who: Admitted, sessionId: string, container: WorkspaceShell, channel: ServerChannel): Promise<string[]> {
    const git = this.opts.git;
    const handle = git ? await git.mintHandle(null, who.workspaceId, who.login).catch(() => undefined) : undefined;
    if (!git || !handle) return this.environment(who, sessionId);
    channel.on('close', () => void git.revoke(handle));
    const env = await git.terminalEnv({ id: who.userId, login: who.login, name: who.name }, handle, container, this.opts.berthPort ?? this.deps.config.PORT);
    return [...env, `BERTH_USER=${who.login}`, `BERTH_SSH_SESSION=${sessionId}`];
  }

  /**
   * The person's environment in the workspace without credentials (SFTP, or no git credentials
   * here): their git identity, so commits made over SSH are theirs, and the session's mark.
   */
  private environment(who: Admitted, sessionId: string): string[] {
    // the same address the browser terminal gives (app/ide/git-credentials.ts terminalEnv)
    const email = `${who.userId}+${who.login}@users.noreply.github.com`;
    const name = who.name?.trim() || who.login;
    return [
      `GIT_AUTHOR_NAME=${name}`,
      `GIT_AUTHOR_EMAIL=${email}`,
      `GIT_COMMITTER_NAME=${name}`,
      `GIT_COMMITTER_EMAIL=${email}`,
      `BERTH_USER=${who.login}`,
      `BERTH_SSH_SESSION=${sessionId}`,
    ];
  }

  /**
   * The workspace's main container, once the workspace runs: a stopped one is woken (the
   * same deduplicated start the preview gateway asks for) and waited for, saying so.
   */
  private async ready(who: Admitted, say: (line: string) => void): Promise<WorkspaceShell> {
    const deadline = Date.now() + SSH_WAKE_TIMEOUT_MS;
    let said = '';
    const tell = (line: string) => {
      if (said === line) return;
      said = line;
      say(line);
    };
    for (;;) {
      const ws = await this.deps.db.workspace.findUnique({ where: { id: who.workspaceId }, select: { id: true, state: true, stateReason: true, previewHost: true, previewService: true } });
      if (!ws || ws.state === 'deleted') throw new Error('the workspace was deleted');
      if (ws.state === 'failed') throw new Error(`the workspace failed: ${(ws.stateReason ?? 'see its page on the dashboard').split('\n')[0]}`);
      if (ws.state === 'stopped') {
        tell('waking the workspace…');
        await wakeIfStopped(this.deps, ws, 'ssh', `woken by an SSH connection of ${who.login}`);
      } else if (ws.previewHost && ['running', 'queued', 'building'].includes(ws.state)) {
        const container = await this.containers.mainContainer(ws.id, ws.previewService);
        if (container) return container;
      } else if (said === '') tell(`waiting for the workspace to start (${ws.state})…`);
      if (Date.now() > deadline) throw new Error(`the workspace did not start within ${SSH_WAKE_TIMEOUT_MS / 1000} s; see its page on the dashboard`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}
