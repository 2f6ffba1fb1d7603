import { posix } from 'node:path';
import type { WorkspaceShell } from '../../lib/workspace-access.js';
// ssh2 is CommonJS: Node's ESM loader gives it as one default export
import ssh2, { type Attributes, type FileEntry, type SFTPWrapper } from 'ssh2';
import { runCommand, type CommandResult } from './container-exec.js';

const { OPEN_MODE, STATUS_CODE } = ssh2.utils.sftp;
/** Files are read and written whole, in Berth's memory: this bounds what one transfer costs. */
export const SFTP_MAX_FILE_BYTES = 64 * 1024 * 1024;
const HOME = '/workspace';
/** `stat` in GNU coreutils and BusyBox alike: raw mode (hex), size, uid, gid, atime, mtime, name */
const STAT_FORMAT = '%f %s %u %g %X %Y %n';
const MAX_HANDLES = 64;

type Handle =
  | { kind: 'file'; path: string; content: Buffer | null; writes: Array<{ offset: number; data: Buffer }> | null; size: number; append: boolean }
  | { kind: 'dir'; path: string; entries: FileEntry[] | null };

/**
 * SFTP for a workspace, served by Berth by running plain commands in the main
 * container (`stat`, `cat`, `mkdir`, `mv`, `rm`, `chmod`: BusyBox has them all), so it works on
 * any image without an sftp-server, as the same user the shell runs as. Paths from the client
 * are arguments to those commands, never shell text. Files are read whole at open and written
 * whole at close (up to SFTP_MAX_FILE_BYTES); relative paths start at /workspace.
 */
export function serveSftp(sftp: SFTPWrapper, container: Promise<WorkspaceShell>, opts: { env: string[]; onActivity: () => void }): void {
  // The client speaks as soon as the subsystem is accepted, which must be at once (ssh2 drops
  // what arrives before): requests wait for the container instead. No container, no session.
  container.catch(() => sftp.end());
  const handles = new Map<number, Handle>();
  // the client's end of input is the end of the session (sftp waits for the channel to close)
  sftp.on('end', () => sftp.end());
  let nextHandle = 1;
  const run = async (argv: string[], stdin?: Buffer): Promise<CommandResult> => runCommand(await container, argv, { stdin, env: opts.env, maxOutput: SFTP_MAX_FILE_BYTES + 4096 });
  const abs = (p: string) => posix.normalize(posix.isAbsolute(p) ? p : posix.join(HOME, p || '.'));
  const open = (h: Handle): Buffer => {
    const id = nextHandle++;
    handles.set(id, h);
    const buf = Buffer.alloc(4);
    buf.writeUInt32BE(id);
    return buf;
  };
  const handleOf = (buf: Buffer): [number, Handle | undefined] => {
    const id = buf.length === 4 ? buf.readUInt32BE(0) : -1;
    return [id, handles.get(id)];
  };
  const fail = (reqId: number, r: Pick<CommandResult, 'stderr'> | Error) => {
    const text = r instanceof Error ? r.message : r.stderr.trim().split('\n').pop() ?? '';
    const code = /no such file|not found|does not exist/i.test(text) ? STATUS_CODE.NO_SUCH_FILE : /permission denied|not permitted|read-only/i.test(text) ? STATUS_CODE.PERMISSION_DENIED : STATUS_CODE.FAILURE;
    sftp.status(reqId, code, text.slice(0, 200) || 'failed');
  };
  /** Every request is answered, whatever the container does: a failure is its status. */
  const on = <A extends unknown[]>(event: string, fn: (reqId: number, ...args: A) => Promise<void>) => {
    sftp.on(event, (reqId: number, ...args: A) => {
      opts.onActivity();
      fn(reqId, ...args).catch((err: Error) => fail(reqId, err));
    });
  };
  const stat = async (path: string, follow: boolean): Promise<Attributes | CommandResult> => {
    const r = await run(['stat', ...(follow ? ['-L'] : []), '-c', STAT_FORMAT, '--', path]);
    if (r.code !== 0) return r;
    return parseStat(r.stdout.toString('utf8').trim())?.attrs ?? { ...r, stderr: 'cannot read the file attributes' };
  };
  const attrsOrFail = (reqId: number, a: Attributes | CommandResult) => ('mode' in a ? sftp.attrs(reqId, a) : fail(reqId, a));
  const ok = (reqId: number, r: CommandResult) => (r.code === 0 ? sftp.status(reqId, STATUS_CODE.OK) : fail(reqId, r));

  on('REALPATH', async (reqId, path: string) => {
    const p = abs(path);
    sftp.name(reqId, [{ filename: p, longname: p, attrs: {} as Attributes }]);
  });
  on('STAT', async (reqId, path: string) => attrsOrFail(reqId, await stat(abs(path), true)));
  on('LSTAT', async (reqId, path: string) => attrsOrFail(reqId, await stat(abs(path), false)));
  on('FSTAT', async (reqId, buf: Buffer) => {
    const [, h] = handleOf(buf);
    if (!h) return sftp.status(reqId, STATUS_CODE.FAILURE, 'no such handle');
    const a = await stat(h.path, true);
    if ('mode' in a && h.kind === 'file' && h.writes) a.size = h.size;
    attrsOrFail(reqId, a);
  });
  on('OPENDIR', async (reqId, path: string) => {
    if (handles.size >= MAX_HANDLES) return sftp.status(reqId, STATUS_CODE.FAILURE, 'too many open files');
    const p = abs(path);
    const a = await stat(p, true);
    if (!('mode' in a)) return fail(reqId, a);
    if ((a.mode & 0o170000) !== 0o040000) return sftp.status(reqId, STATUS_CODE.FAILURE, 'not a directory');
    sftp.handle(reqId, open({ kind: 'dir', path: p, entries: null }));
  });
  on('READDIR', async (reqId, buf: Buffer) => {
    const [, h] = handleOf(buf);
    if (!h || h.kind !== 'dir') return sftp.status(reqId, STATUS_CODE.FAILURE, 'no such handle');
    if (h.entries) return sftp.status(reqId, STATUS_CODE.EOF);
    // one `stat` for the whole folder; a glob that matched nothing stays literal and is skipped
    const r = await run(['sh', '-c', 'cd -- "$1" || exit 2; exec stat -c "$2" -- .* * 2>/dev/null; exit 0', 'sh', h.path, STAT_FORMAT]);
    if (r.code === 2) return fail(reqId, r);
    h.entries = r.stdout
      .toString('utf8')
      .split('\n')
      .map(parseStat)
      .filter((e): e is FileEntry => Boolean(e));
    if (!h.entries.length) return sftp.status(reqId, STATUS_CODE.EOF);
    sftp.name(reqId, h.entries);
  });
  on('OPEN', async (reqId, path: string, flags: number) => {
    if (handles.size >= MAX_HANDLES) return sftp.status(reqId, STATUS_CODE.FAILURE, 'too many open files');
    const p = abs(path);
    const writing = (flags & (OPEN_MODE.WRITE | OPEN_MODE.APPEND)) !== 0;
    const a = await stat(p, true);
    const exists = 'mode' in a;
    if (exists && (flags & OPEN_MODE.CREAT) && (flags & OPEN_MODE.EXCL)) return sftp.status(reqId, STATUS_CODE.FAILURE, 'the file exists');
    if (!exists && !(writing && flags & OPEN_MODE.CREAT)) return fail(reqId, a as CommandResult);
    if (exists && (a.mode & 0o170000) === 0o040000) return sftp.status(reqId, STATUS_CODE.FAILURE, 'is a directory');
    if (exists && a.size > SFTP_MAX_FILE_BYTES && !(flags & OPEN_MODE.TRUNC)) {
      return sftp.status(reqId, STATUS_CODE.FAILURE, `larger than ${SFTP_MAX_FILE_BYTES / 1024 / 1024} MB, which Berth's SFTP does not transfer; use ssh … cat`);
    }
    let content: Buffer | null = null;
    if (exists && !(flags & OPEN_MODE.TRUNC)) {
      const r = await run(['cat', '--', p]);
      if (r.code !== 0) return fail(reqId, r);
      content = r.stdout;
    }
    if (writing) {
      // the file exists from now on, as it would on a disk (an empty upload too)
      if (!exists || flags & OPEN_MODE.TRUNC) {
        const r = await run(['sh', '-c', ': > "$1"', 'sh', p]);
        if (r.code !== 0) return fail(reqId, r);
      }
      const base = content ?? Buffer.alloc(0);
      const h: Handle = { kind: 'file', path: p, content: base, writes: [], size: base.length, append: Boolean(flags & OPEN_MODE.APPEND) };
      return sftp.handle(reqId, open(h));
    }
    sftp.handle(reqId, open({ kind: 'file', path: p, content, writes: null, size: content?.length ?? 0, append: false }));
  });
  on('READ', async (reqId, buf: Buffer, offset: number, len: number) => {
    const [, h] = handleOf(buf);
    if (!h || h.kind !== 'file' || !h.content) return sftp.status(reqId, STATUS_CODE.FAILURE, 'no such handle');
    if (offset >= h.content.length) return sftp.status(reqId, STATUS_CODE.EOF);
    sftp.data(reqId, h.content.subarray(offset, offset + len));
  });
  on('WRITE', async (reqId, buf: Buffer, offset: number, data: Buffer) => {
    const [, h] = handleOf(buf);
    if (!h || h.kind !== 'file' || !h.writes) return sftp.status(reqId, STATUS_CODE.FAILURE, 'not open for writing');
    const at = h.append ? h.size : offset;
    if (at + data.length > SFTP_MAX_FILE_BYTES) return sftp.status(reqId, STATUS_CODE.FAILURE, `larger than ${SFTP_MAX_FILE_BYTES / 1024 / 1024} MB, which Berth's SFTP does not transfer`);
    h.writes.push({ offset: at, data: Buffer.from(data) });
    h.size = Math.max(h.size, at + data.length);
    sftp.status(reqId, STATUS_CODE.OK);
  });
  on('CLOSE', async (reqId, buf: Buffer) => {
    const [id, h] = handleOf(buf);
    if (!h) return sftp.status(reqId, STATUS_CODE.FAILURE, 'no such handle');
    handles.delete(id);
    if (h.kind === 'file' && h.writes && h.writes.length) {
      const whole = Buffer.alloc(h.size);
      h.content?.copy(whole);
      for (const w of h.writes) w.data.copy(whole, w.offset);
      return ok(reqId, await run(['sh', '-c', 'cat > "$1"', 'sh', h.path], whole));
    }
    sftp.status(reqId, STATUS_CODE.OK);
  });
  on('MKDIR', async (reqId, path: string) => ok(reqId, await run(['mkdir', '--', abs(path)])));
  on('RMDIR', async (reqId, path: string) => ok(reqId, await run(['rmdir', '--', abs(path)])));
  on('REMOVE', async (reqId, path: string) => ok(reqId, await run(['rm', '--', abs(path)])));
  on('RENAME', async (reqId, from: string, to: string) => ok(reqId, await run(['mv', '--', abs(from), abs(to)])));
  on('READLINK', async (reqId, path: string) => {
    const r = await run(['readlink', '--', abs(path)]);
    if (r.code !== 0) return fail(reqId, r);
    const target = r.stdout.toString('utf8').replace(/\n$/, '');
    sftp.name(reqId, [{ filename: target, longname: target, attrs: {} as Attributes }]);
  });
  const setstat = async (reqId: number, path: string, attrs: Attributes) => {
    // permissions are what editors and uploads set; owners and times are left as they are
    if (typeof attrs.mode === 'number') return ok(reqId, await run(['chmod', (attrs.mode & 0o7777).toString(8), '--', path]));
    sftp.status(reqId, STATUS_CODE.OK);
  };
  on('SETSTAT', async (reqId, path: string, attrs: Attributes) => setstat(reqId, abs(path), attrs));
  on('FSETSTAT', async (reqId, buf: Buffer, attrs: Attributes) => {
    const [, h] = handleOf(buf);
    if (!h) return sftp.status(reqId, STATUS_CODE.FAILURE, 'no such handle');
    await setstat(reqId, h.path, attrs);
  });
  on('SYMLINK', async (reqId) => sftp.status(reqId, STATUS_CODE.OP_UNSUPPORTED, 'symbolic links: use the shell'));
}

/** A line of STAT_FORMAT → an SFTP name entry with a `ls -l`-like long name. */
function parseStat(line: string): FileEntry | null {
  const m = /^([0-9a-f]+) (\d+) (\d+) (\d+) (\d+) (\d+) (.+)$/.exec(line);
  if (!m) return null;
  const [, rawMode, size, uid, gid, atime, mtime, path] = m as unknown as string[];
  const attrs: Attributes = { mode: parseInt(rawMode!, 16), size: Number(size), uid: Number(uid), gid: Number(gid), atime: Number(atime), mtime: Number(mtime) };
  const filename = posix.basename(path!) || path!;
  const date = new Date(attrs.mtime * 1000).toISOString().slice(0, 16).replace('T', ' ');
  return { filename, longname: `${modeString(attrs.mode)} 1 ${attrs.uid} ${attrs.gid} ${String(attrs.size).padStart(8)} ${date} ${filename}`, attrs };
}

function modeString(mode: number): string {
  const type = { 0o040000: 'd', 0o120000: 'l', 0o010000: 'p', 0o140000: 's', 0o020000: 'c', 0o060000: 'b' }[mode & 0o170000] ?? '-';
  let s = type;
  for (const shift of [6, 3, 0]) {
    const bits = (mode >> shift) & 7;
    s += (bits & 4 ? 'r' : '-') + (bits & 2 ? 'w' : '-') + (bits & 1 ? 'x' : '-');
  }
  return s;
}
