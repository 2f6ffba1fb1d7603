import { randomBytes } from 'node:crypto';
import type Dockerode from 'dockerode';
import { LogTail, textSink } from './logs.js';
import type { ExecOptions, TaskResult } from './types.js';

const TAIL_LINES = 20;
const POLL_MS = 200;
/** after the exec's process ended, how long output still in flight may take to arrive */
const DRAIN_MS = 300;

/**
 * Runs a command in a running container (`docker exec`), as devcontainer lifecycle commands
 * run: in the container people work in, so what it starts (a dev server in the background)
 * keeps running there. A string runs with `sh -c`, a list as it is (exec form). The command's
 * pid is written where a kill at the time limit finds it: an exec has no kill of its own.
 * Done when its process ends, even while something it started in the background still holds
 * its output open.
 */
export async function execInContainer(docker: Dockerode, container: Dockerode.Container, command: string | string[], opts: ExecOptions = {}): Promise<TaskResult> {
  const pidFile = `/tmp/.berth-exec-${randomBytes(6).toString('hex')}.pid`;
  // `exec "$@"`: the pid file names the command itself, and its arguments never pass through a shell
  const argv = typeof command === 'string' ? ['sh', '-c', command] : command;
  const exec = await container.exec({
    Cmd: ['sh', '-c', `echo $$ > ${pidFile}; exec 2>&1; exec "$@"`, 'berth-exec', ...argv],
    AttachStdout: true,
    AttachStderr: true,
    ...(opts.workingDir ? { WorkingDir: opts.workingDir } : {}),
  });
  const stream = await exec.start({ hijack: true, stdin: false });
  const tail = new LogTail(TAIL_LINES);
  const sink = textSink((text) => {
    tail.push(text);
    opts.onLog?.(text);
  });
  docker.modem.demuxStream(stream, sink, sink);
  const deadline = opts.timeoutMs ? Date.now() + opts.timeoutMs : Infinity;
  let timedOut = false;
  try {
    for (;;) {
      const info = await exec.inspect();
      if (!info.Running) {
        await new Promise((r) => setTimeout(r, DRAIN_MS));
        return { exitCode: timedOut ? -1 : (info.ExitCode ?? -1), tail: tail.toString(), oomKilled: false, ...(timedOut ? { timedOut } : {}) };
      }
      if (!timedOut && Date.now() > deadline) {
        timedOut = true;
        await kill(container, pidFile);
      }
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  } finally {
    stream.destroy();
    void removePidFile(container, pidFile);
  }
}

async function kill(container: Dockerode.Container, pidFile: string): Promise<void> {
  const exec = await container.exec({ Cmd: ['sh', '-c', `p="$(cat ${pidFile})"; kill -KILL -- "-$p" 2>/dev/null || kill -KILL "$p"`], AttachStdout: false, AttachStderr: false });
  await exec.start({ Detach: true }).catch(() => undefined);
}

async function removePidFile(container: Dockerode.Container, pidFile: string): Promise<void> {
  const exec = await container.exec({ Cmd: ['rm', '-f', pidFile], AttachStdout: false, AttachStderr: false }).catch(() => undefined);
  await exec?.start({ Detach: true }).catch(() => undefined);
}
