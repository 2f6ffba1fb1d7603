/**
 * Copies Docker volumes onto others, through the engine, never on the host: a base disk onto a
 * new workspace's disk, a workspace's data volumes into a snapshot and back (issue 17).
 *
 * The volumes hold whatever a branch's migrate and seed (or people) wrote: links, devices,
 * files of any owner. So the copy runs in a one-off container of the tools image (the host's
 * GNU cp, rm and du; see tools-image.ts) with the volumes and nothing else: no network, no
 * Berth environment, a read-only root, the source volumes read-only, only the capabilities that
 * keep each file's owner and mode (postgres refuses a data folder that is not its own, 0700),
 * and a time limit. `cp -a` copies links as links, so nothing outside the volumes is read.
 *
 * `cp --reflink=auto` shares blocks copy-on-write where the engine's file system can (btrfs,
 * xfs with reflink): a copy of any size in the time of its metadata. Elsewhere (ext4, overlay)
 * it streams every byte; the result says which, so the check run and the benchmark can tell.
 */
import type Dockerode from 'dockerode';
import { StepFailedError } from '../../lib/errors.js';
import { formatDuration } from '../../lib/config.js';
import { LogTail, demuxBuffer } from './logs.js';
import type { DiskCopyResult } from './types.js';

export interface VolumePair {
  from: string;
  to: string;
}

export interface CopyTarget {
  /** container name (unique) and labels (so removeTasks clears one a dead worker left) */
  name: string;
  labels: Record<string, string>;
  toolsImage: string;
}

/**
 * `$1`: how many pairs (mounted at /from/<i> and /to/<i>); `$2`: 1 to empty each target first.
 * The reflink probe writes two bytes on the first target, which is on the same file system as
 * every volume of a `local` driver (the engine's volumes folder).
 */
const COPY_SCRIPT = `
n="$1"; replace="$2"; method=copy
probe=/to/0/.berth-reflink-probe
if printf x > "$probe" 2>/dev/null && cp --reflink=always "$probe" "$probe.2" 2>/dev/null; then method=reflink; fi
rm -f -- "$probe" "$probe.2"
i=0
while [ "$i" -lt "$n" ]; do
  if [ "$replace" = 1 ]; then rm -rf -- /to/$i/* /to/$i/.[!.]* /to/$i/..?* || exit 1; fi
  cp -a --reflink=auto /from/$i/. /to/$i/ || exit 1
  i=$((i + 1))
done
echo "berth-copy-method=$method"
du -s -c -B1 /to/* | while read -r size name; do [ "$name" = total ] && echo "berth-copy-bytes=$size"; done
`;

const OUTPUT_LINES = 40;

export async function copyVolumes(docker: Dockerode, target: CopyTarget, pairs: VolumePair[], opts: { timeoutMs: number; replace?: boolean }): Promise<DiskCopyResult> {
  const started = Date.now();
  if (pairs.length === 0) return { method: 'copy', volumes: 0, bytes: 0, durationMs: 0 };
  const mounts: Dockerode.MountSettings[] = pairs.flatMap((p, i) => [
    { Type: 'volume' as const, Source: p.from, Target: `/from/${i}`, ReadOnly: true },
    { Type: 'volume' as const, Source: p.to, Target: `/to/${i}` },
  ]);
  const container = await docker.createContainer({
    name: target.name,
    Image: target.toolsImage,
    Cmd: ['/bin/sh', '-c', COPY_SCRIPT, 'berth-disk-copy', String(pairs.length), opts.replace ? '1' : '0'],
    Env: ['PATH=/usr/bin:/bin'],
    User: '0:0',
    WorkingDir: '/',
    Labels: target.labels,
    HostConfig: {
      NetworkMode: 'none',
      CapDrop: ['ALL'],
      // read every file, and give each copy its owner, mode and setuid bits back
      CapAdd: ['CHOWN', 'DAC_OVERRIDE', 'DAC_READ_SEARCH', 'FOWNER', 'FSETID'],
      SecurityOpt: ['no-new-privileges'],
      ReadonlyRootfs: true,
      Tmpfs: { '/tmp': 'rw,nosuid,nodev,noexec,size=1m' },
      PidsLimit: 32,
      Memory: 256 * 1024 * 1024,
      MemorySwap: 256 * 1024 * 1024,
      Mounts: mounts,
      RestartPolicy: { Name: 'no' },
      LogConfig: { Type: 'json-file', Config: { 'max-size': '1m' } },
    },
  });
  try {
    await container.start();
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      container.wait().then(() => false),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(true), opts.timeoutMs);
      }),
    ]).finally(() => clearTimeout(timer));
    if (timedOut) {
      await container.kill().catch(() => undefined);
      throw new StepFailedError('copy', `copying the disk did not finish within ${formatDuration(opts.timeoutMs)} (BERTH_TASK_TIMEOUT), so Berth stopped it`);
    }
    const info = await container.inspect();
    const logs = (await container.logs({ stdout: true, stderr: true, follow: false, tail: OUTPUT_LINES })) as Buffer;
    const tail = new LogTail(OUTPUT_LINES);
    tail.push(demuxBuffer(logs));
    const output = tail.toString();
    if (info.State.ExitCode !== 0) {
      const why = info.State.OOMKilled ? 'ran out of memory' : `exited with code ${info.State.ExitCode}`;
      throw new StepFailedError('copy', `copying the disk failed: cp ${why}`, output.split('\n').slice(-10).join('\n'));
    }
    return { ...parseCopyOutput(output), volumes: pairs.length, durationMs: Date.now() - started };
  } finally {
    await container.remove({ force: true }).catch(() => undefined);
  }
}

/** the method and size COPY_SCRIPT printed */
export function parseCopyOutput(output: string): { method: DiskCopyResult['method']; bytes: number } {
  const method = /berth-copy-method=(reflink|copy)/.exec(output)?.[1] === 'reflink' ? 'reflink' : 'copy';
  const bytes = Number(/berth-copy-bytes=(\d+)/.exec(output)?.[1] ?? 0);
  return { method, bytes };
}
