/**
 * Images assembled from files already on the host and imported with `docker import` semantics:
 * Berth's tools image (git for the workspace disk) and the tests' base image are made this way,
 * because nothing may be pulled or downloaded (a host without a registry, a test machine).
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import type Dockerode from 'dockerode';
import tar from 'tar-fs';

const execFileAsync = promisify(execFile);

export async function copyExecutable(src: string, dest: string): Promise<void> {
  await fs.mkdir(path.dirname(dest), { recursive: true });
  await fs.copyFile(src, dest);
  await fs.chmod(dest, 0o755);
}

/**
 * Copies the shared libraries `ldd` lists for `binary` into `rootfs` under the same absolute
 * paths (symlinks dereferenced), including the dynamic loader. Returns the host paths copied.
 */
export async function copySharedLibraries(binary: string, rootfs: string): Promise<string[]> {
  const libs = await sharedLibraries(binary);
  for (const lib of libs) {
    const dest = path.join(rootfs, lib);
    await fs.mkdir(path.dirname(dest), { recursive: true });
    await fs.copyFile(lib, dest); // copyFile follows symlinks: the link name gets the real file
    await fs.chmod(dest, 0o755);
  }
  return libs;
}

/** Absolute paths of the shared libraries (and loader) `binary` needs, from `ldd`. */
export async function sharedLibraries(binary: string): Promise<string[]> {
  let output: string;
  try {
    const { stdout, stderr } = await execFileAsync('ldd', [binary]);
    output = `${stdout}\n${stderr}`;
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; code?: unknown };
    const text = `${e.stdout ?? ''}\n${e.stderr ?? ''}`;
    if (/not a dynamic executable|statically linked/.test(text)) return [];
    if (e.code === 'ENOENT') throw new Error('ldd not found (Debian package libc-bin)');
    throw err;
  }
  if (/statically linked|not a dynamic executable/.test(output)) return [];
  return parseLdd(output, binary);
}

/** Parses `ldd` output. Exported for unit tests. */
export function parseLdd(output: string, binary = 'binary'): string[] {
  const libs: string[] = [];
  for (const raw of output.split('\n')) {
    const line = raw.trim();
    if (!line) continue;
    // "libfoo.so.1 => not found"
    if (/=>\s*not found/.test(line)) throw new Error(`${binary}: shared library missing on host: ${line}`);
    // "libdl.so.2 => /lib/x86_64-linux-gnu/libdl.so.2 (0x...)"
    const arrow = /=>\s*(\/\S+)/.exec(line);
    if (arrow) {
      libs.push(arrow[1]!);
      continue;
    }
    // "/lib64/ld-linux-x86-64.so.2 (0x...)" (the loader); "linux-vdso.so.1 (0x...)" is virtual.
    const bare = /^(\/\S+)\s+\(0x[0-9a-f]+\)$/i.exec(line);
    if (bare) libs.push(bare[1]!);
  }
  return [...new Set(libs)];
}

export interface ImportOptions {
  repo: string;
  tag: string;
  message: string;
  /** Dockerfile instructions docker import accepts (ENV, CMD, LABEL, USER, WORKDIR) */
  changes: string[];
  /** owner of an entry by its path inside the image (default root) */
  ownerOf?: (name: string) => { uid: number; gid: number; user: string; group: string } | undefined;
}

/** Imports the directory `rootfs` as the image `repo:tag`. Entries belong to root unless `ownerOf` says otherwise. */
export async function importRootfs(docker: Dockerode, rootfs: string, opts: ImportOptions): Promise<string> {
  const stream = tar.pack(rootfs, {
    map(h) {
      // tar-stream writes uname/gname too; @types/tar-fs does not list them.
      const header = h as typeof h & { uname?: string; gname?: string };
      const owner = opts.ownerOf?.(header.name) ?? { uid: 0, gid: 0, user: 'root', group: 'root' };
      header.uid = owner.uid;
      header.gid = owner.gid;
      header.uname = owner.user;
      header.gname = owner.group;
      if (header.name === 'tmp' || header.name === 'var/tmp') header.mode = 0o41777;
      return header;
    },
  });
  const progress = await docker.importImage(stream, { repo: opts.repo, tag: opts.tag, message: opts.message, changes: opts.changes } as object);
  await followProgress(docker, progress);
  const ref = `${opts.repo}:${opts.tag}`;
  if (!(await imageExists(docker, ref))) throw new Error(`docker import finished but ${ref} does not exist`);
  return ref;
}

export async function imageExists(docker: Dockerode, ref: string): Promise<boolean> {
  try {
    await docker.getImage(ref).inspect();
    return true;
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode === 404) return false;
    throw err;
  }
}

async function followProgress(docker: Dockerode, stream: NodeJS.ReadableStream): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    docker.modem.followProgress(stream, (err: Error | null, events: Array<{ error?: string; errorDetail?: { message?: string } }>) => {
      if (err) return reject(err);
      const failed = (events ?? []).find((e) => e.error || e.errorDetail);
      if (failed) return reject(new Error(failed.errorDetail?.message ?? failed.error));
      resolve();
    });
  });
}
