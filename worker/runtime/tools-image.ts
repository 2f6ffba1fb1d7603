/**
 * Berth's tools image: git, a shell and cp/rm/du, nothing else, for work on a workspace disk that
 * Berth must not do on the host (see disk-git.ts; disk-copy.ts copies disks with cp). Workspace images need not have git, and Berth
 * pulls nothing: the image is assembled from the host's own git (the binary, its dashed
 * helpers as links to it, the libraries `ldd` lists) and the host's /bin/sh, imported with
 * `docker import`. Tagged by a hash of those files, so it is built once per engine and
 * rebuilt only when the host's git changes.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type Dockerode from 'dockerode';
import { copyExecutable, copySharedLibraries, imageExists, importRootfs, sharedLibraries } from './rootfs-image.js';

export const TOOLS_IMAGE_REPO = 'berth-tools';
/** bump when the layout below changes, so an engine holding the old layout gets the new one */
const LAYOUT = '2';
/** git's compiled-in exec path on Debian/Ubuntu/Fedora builds (RUNTIME_PREFIX off) */
const GIT_EXEC_PATH = '/usr/lib/git-core';
/** git runs these as dashed commands through `sh -c` (the local transport); all are git builtins */
const DASHED = ['git', 'git-upload-pack', 'git-receive-pack', 'git-upload-archive'];
/** GNU coreutils for disk copies (disk-copy.ts): cp for --reflink, rm to empty a volume, du to measure it */
const COREUTILS = ['cp', 'rm', 'du'];

const building = new Map<string, Promise<string>>();

/** The tools image's reference, importing it first when this engine does not have it. */
export async function ensureToolsImage(docker: Dockerode): Promise<string> {
  const files = await hostFiles();
  const ref = `${TOOLS_IMAGE_REPO}:${files.tag}`;
  if (await imageExists(docker, ref)) return ref;
  let pending = building.get(ref);
  if (!pending) {
    pending = buildToolsImage(docker, files, ref).finally(() => building.delete(ref));
    building.set(ref, pending);
  }
  return pending;
}

interface HostFiles {
  git: string;
  sh: string;
  /** name → path of COREUTILS */
  coreutils: Record<string, string>;
  libs: string[];
  /** a hash of all of them (and of the layout): the image's tag */
  tag: string;
}

/** once per process: the host's git does not change under a running worker (a restart picks up an upgrade) */
let cachedFiles: Promise<HostFiles> | undefined;

function hostFiles(): Promise<HostFiles> {
  cachedFiles ??= (async () => {
    const git = await realExecutable(['/usr/bin/git', '/bin/git', '/usr/local/bin/git'], 'git (Debian package git)');
    const sh = await realExecutable(['/bin/sh', '/usr/bin/sh'], 'a POSIX shell at /bin/sh');
    const coreutils: Record<string, string> = {};
    for (const name of COREUTILS) coreutils[name] = await realExecutable([`/usr/bin/${name}`, `/bin/${name}`], `${name} (Debian package coreutils)`);
    const binaries = [git, sh, ...Object.values(coreutils)];
    const libs = [...new Set((await Promise.all(binaries.map((b) => sharedLibraries(b)))).flat())].sort();
    return { git, sh, coreutils, libs, tag: await contentTag([...binaries, ...libs]) };
  })().catch((err) => {
    cachedFiles = undefined;
    throw err;
  });
  return cachedFiles;
}

async function realExecutable(candidates: string[], what: string): Promise<string> {
  for (const c of candidates) {
    try {
      await fs.access(c, fs.constants.X_OK);
      return await fs.realpath(c);
    } catch {
      // next
    }
  }
  throw new Error(`Berth needs ${what} on the worker host to build its tools image; none found at ${candidates.join(', ')}`);
}

async function contentTag(files: string[]): Promise<string> {
  const hash = createHash('sha256').update(`layout ${LAYOUT}\n`);
  for (const file of files) {
    hash.update(`${file}\n`);
    hash.update(await fs.readFile(file));
  }
  return hash.digest('hex').slice(0, 16);
}

async function buildToolsImage(docker: Dockerode, files: HostFiles, ref: string): Promise<string> {
  const rootfs = await fs.mkdtemp(path.join(os.tmpdir(), 'berth-tools-rootfs-'));
  try {
    for (const d of ['bin', 'usr/bin', 'etc', 'tmp', 'proc', 'sys', 'dev', 'workspace', 'src', GIT_EXEC_PATH.slice(1)]) {
      await fs.mkdir(path.join(rootfs, d), { recursive: true });
    }
    await copyExecutable(files.sh, path.join(rootfs, 'bin/sh'));
    await copyExecutable(files.git, path.join(rootfs, 'usr/bin/git'));
    for (const name of DASHED) await fs.symlink('/usr/bin/git', path.join(rootfs, GIT_EXEC_PATH.slice(1), name));
    await copySharedLibraries(files.git, rootfs);
    await copySharedLibraries(files.sh, rootfs);
    for (const [name, binary] of Object.entries(files.coreutils)) {
      await copyExecutable(binary, path.join(rootfs, 'usr/bin', name));
      await copySharedLibraries(binary, rootfs);
    }
    // git asks for the user's entry (a reflog's identity); any uid may run here, so none has one
    await fs.writeFile(path.join(rootfs, 'etc/passwd'), 'root:x:0:0:root:/tmp:/bin/sh\n');
    await fs.writeFile(path.join(rootfs, 'etc/group'), 'root:x:0:\n');
    const [repo, tag] = ref.split(':') as [string, string];
    return await importRootfs(docker, rootfs, {
      repo,
      tag,
      message: 'berth tools image: the host git, /bin/sh, cp, rm and du',
      changes: ['ENV PATH=/usr/bin:/bin', 'CMD ["/bin/sh"]', 'LABEL berth.tools=1'],
    });
  } finally {
    await fs.rm(rootfs, { recursive: true, force: true });
  }
}
