/**
 * git against a workspace disk, in a one-off container of the tools image, never on the host.
 *
 * Everything on a workspace disk is the workspace's to write, `.git/config` and `.git/hooks`
 * included: a `core.fsmonitor` command, a hook, a filter or a rewritten remote run whatever
 * the workspace put there. So git runs where that can hurt no one but the workspace itself:
 * no network, no capabilities, no new privileges, a read-only root, no Berth environment and
 * no token, as the owner of /workspace/.git (root gets back only what it needs to write files
 * of the app's user), with a time limit. Berth's side of the exchange
 * (a clone Berth made, whose `.git` Berth wrote) is mounted read-only at /src, so a fetch
 * needs nothing from outside. git's own settings that run commands are switched off as well,
 * from the command-line scope, which outranks the repository's config.
 */
import type Dockerode from 'dockerode';
import { StepFailedError } from '../../lib/errors.js';
import { LogTail, demuxBuffer } from './logs.js';
import type { DiskGitRequest, DiskGitResult } from './types.js';

/** where the workspace disk and Berth's clone (its .git directory) are seen inside */
export const DISK_DIR = '/workspace';
export const SOURCE_DIR = '/src';

const DEFAULT_TIMEOUT_MS = 60_000;
const OUTPUT_LINES = 200;

/**
 * git settings from the command-line scope (GIT_CONFIG_COUNT/KEY/VALUE), which outranks the
 * repository's config: no fsmonitor, no hooks, no protocols but local files, no credential
 * helpers; safe.directory only for the two paths involved. git drops these for the far end of
 * a local transport (upload-pack, receive-pack): a script that starts one passes them again on
 * its command line (see disk-sync.ts).
 */
const GIT_CONFIG: Array<[string, string]> = [
  ['core.fsmonitor', 'false'],
  ['core.hooksPath', '/dev/null'],
  ['credential.helper', ''],
  ['protocol.allow', 'never'],
  ['protocol.file.allow', 'always'],
  ['safe.directory', DISK_DIR],
  ['safe.directory', SOURCE_DIR],
];

function gitEnv(): string[] {
  const env: Record<string, string> = {
    PATH: '/usr/bin:/bin',
    HOME: '/tmp',
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_GLOBAL: '/dev/null',
    GIT_TERMINAL_PROMPT: '0',
    GIT_CONFIG_COUNT: String(GIT_CONFIG.length),
  };
  GIT_CONFIG.forEach(([k, v], i) => {
    env[`GIT_CONFIG_KEY_${i}`] = k;
    env[`GIT_CONFIG_VALUE_${i}`] = v;
  });
  return Object.entries(env).map(([k, v]) => `${k}=${v}`);
}

export interface DiskGitTarget {
  /** the workspace disk's volume name */
  volume: string;
  /** container name (unique) and labels (so removeTasks clears one a dead worker left) */
  name: string;
  labels: Record<string, string>;
  toolsImage: string;
}

export async function runDiskGit(docker: Dockerode, target: DiskGitTarget, req: DiskGitRequest): Promise<DiskGitResult> {
  const user = (await diskOwner(docker, target)) ?? '65534:65534';
  const mounts: Dockerode.MountSettings[] = [{ Type: 'volume', Source: target.volume, Target: DISK_DIR }];
  if (req.sourceGitDir) mounts.push({ Type: 'bind', Source: req.sourceGitDir, Target: SOURCE_DIR, ReadOnly: true });
  const container = await docker.createContainer({
    name: target.name,
    Image: target.toolsImage,
    Cmd: ['/bin/sh', '-c', req.script, 'berth-disk-git', ...(req.args ?? [])],
    Env: gitEnv(),
    User: user,
    WorkingDir: DISK_DIR,
    Labels: target.labels,
    HostConfig: {
      NetworkMode: 'none',
      CapDrop: ['ALL'],
      // A disk whose .git is root's (the image runs as root) may hold files of the app's user:
      // root updates them as the workspace's own containers could. Any other owner gets none.
      CapAdd: user.startsWith('0:') ? ['CHOWN', 'DAC_OVERRIDE', 'FOWNER'] : [],
      SecurityOpt: ['no-new-privileges'],
      ReadonlyRootfs: true,
      Tmpfs: { '/tmp': 'rw,nosuid,nodev,noexec,size=16m' },
      PidsLimit: 64,
      Memory: 1024 * 1024 * 1024,
      MemorySwap: 1024 * 1024 * 1024,
      NanoCpus: 1e9,
      Mounts: mounts,
      RestartPolicy: { Name: 'no' },
      LogConfig: { Type: 'json-file', Config: { 'max-size': '1m' } },
    },
  });
  try {
    await container.start();
    const timeoutMs = req.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      container.wait().then(() => false),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(true), timeoutMs);
      }),
    ]).finally(() => clearTimeout(timer));
    if (timedOut) await container.kill().catch(() => undefined);
    const info = await container.inspect();
    const logs = (await container.logs({ stdout: true, stderr: true, follow: false, tail: OUTPUT_LINES })) as Buffer;
    const tail = new LogTail(OUTPUT_LINES);
    tail.push(demuxBuffer(logs));
    return { exitCode: timedOut ? -1 : info.State.ExitCode, output: tail.toString(), timedOut };
  } finally {
    await container.remove({ force: true }).catch(() => undefined);
  }
}

/**
 * Whether `relPath` exists on the workspace disk (a symlink counts, and is not followed), asked
 * of the engine through a container that never starts, so no host code reads the disk.
 */
export async function diskEntryExists(docker: Dockerode, target: DiskGitTarget, relPath: string): Promise<boolean> {
  return withIdleContainer(docker, target, async (container) => {
    try {
      await container.infoArchive({ path: `${DISK_DIR}/${relPath}` });
      return true;
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404) return false;
      throw err;
    }
  });
}

/**
 * `uid:gid` owning /workspace/.git, or null when the disk has none (then the script runs as
 * nobody: there is no checkout to change, and the engine reports the volume's mount point, not
 * the volume, as the owner of /workspace itself)
 */
async function diskOwner(docker: Dockerode, target: DiskGitTarget): Promise<string | null> {
  return withIdleContainer(docker, target, (container) => firstEntryOwner(container, `${DISK_DIR}/.git`));
}

async function withIdleContainer<T>(docker: Dockerode, target: DiskGitTarget, fn: (c: Dockerode.Container) => Promise<T>): Promise<T> {
  // Never started: the daemon mounts a created container's volumes for archive calls.
  const container = await docker.createContainer({
    name: `${target.name}-probe`,
    Image: target.toolsImage,
    Cmd: ['true'],
    Labels: target.labels,
    HostConfig: { NetworkMode: 'none', Mounts: [{ Type: 'volume', Source: target.volume, Target: DISK_DIR }] },
  });
  try {
    return await fn(container);
  } finally {
    await container.remove({ force: true }).catch(() => undefined);
  }
}

/**
 * The owner of `p` from the first header of the engine's archive of it (the entry itself;
 * a symlink is not followed). Only the first block or two are read, then the stream is dropped.
 */
async function firstEntryOwner(container: Dockerode.Container, p: string): Promise<string | null> {
  let stream: NodeJS.ReadableStream;
  try {
    stream = await container.getArchive({ path: p });
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode === 404) return null;
    throw err;
  }
  let buf = Buffer.alloc(0);
  try {
    for await (const chunk of stream) {
      buf = Buffer.concat([buf, chunk as Buffer]);
      const owner = ownerFromTar(buf);
      if (owner !== undefined) return owner;
      if (buf.length > 1024 * 1024) break;
    }
  } finally {
    (stream as NodeJS.ReadableStream & { destroy?: () => void }).destroy?.();
  }
  throw new StepFailedError('update', `could not read the owner of ${p} on the workspace disk`);
}

/** uid:gid of the first real entry of a tar stream; undefined until enough of it is read */
export function ownerFromTar(buf: Buffer): string | null | undefined {
  let at = 0;
  // a PAX extended header may carry the ids (large ones do not fit the classic fields)
  let pax: Record<string, string> = {};
  while (at + 512 <= buf.length) {
    const header = buf.subarray(at, at + 512);
    if (header.every((b) => b === 0)) return null;
    const type = String.fromCharCode(header[156]!);
    const size = tarNumber(header.subarray(124, 136));
    if (type === 'x' || type === 'g' || type === 'L' || type === 'K') {
      const end = at + 512 + Math.ceil(size / 512) * 512;
      if (end > buf.length) return undefined;
      if (type === 'x') pax = paxRecords(buf.subarray(at + 512, at + 512 + size).toString('utf8'));
      at = end;
      continue;
    }
    const uid = pax.uid !== undefined ? Number(pax.uid) : tarNumber(header.subarray(108, 116));
    const gid = pax.gid !== undefined ? Number(pax.gid) : tarNumber(header.subarray(116, 124));
    if (!Number.isSafeInteger(uid) || !Number.isSafeInteger(gid) || uid < 0 || gid < 0) {
      throw new StepFailedError('update', 'the engine sent an archive Berth cannot read');
    }
    return `${uid}:${gid}`;
  }
  return undefined;
}

/** a numeric tar field: octal text, or base-256 when the high bit of the first byte is set */
function tarNumber(field: Buffer): number {
  if (field[0]! & 0x80) {
    let n = field[0]! & 0x7f;
    for (const b of field.subarray(1)) n = n * 256 + b;
    return n;
  }
  const text = field.toString('latin1').replace(/\0.*$/s, '').trim();
  return text ? parseInt(text, 8) : 0;
}

/** "<len> key=value\n" records */
function paxRecords(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^\d+ ([^=]+)=(.*)$/s.exec(line);
    if (m) out[m[1]!] = m[2]!;
  }
  return out;
}
