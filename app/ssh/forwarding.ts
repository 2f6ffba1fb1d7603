import net from 'node:net';
import type { WorkspaceShell } from '../../lib/workspace-access.js';
import { EXEC_START_TIMEOUT_MS, withTimeout } from './container-exec.js';
import type { ServerChannel } from 'ssh2';

const CONNECT_TIMEOUT_MS = 10_000;
const LOOPBACK = new Set(['localhost', '127.0.0.1', '::1', '0.0.0.0', 'ip6-localhost']);

/**
 * the client's `localhost`: the main container, whose loopback-only servers need the relay
 * below. Where else `ssh -L` may go is WorkspaceAccess.forwardTarget: only the workspace's own
 * containers (a service or container name, or one of their IPs); anything else (the host, the
 * internet, another workspace) is refused, or the tunnel would start from Berth's network position.
 */
export function isLoopback(destination: string): boolean {
  return LOOPBACK.has(destination.toLowerCase().replace(/^\[|\]$/g, ''));
}

/**
 * A relay run inside the container to its own 127.0.0.1:<port>, for servers that listen on
 * loopback only (VS Code's server started by Remote-SSH, many dev servers): whichever of nc,
 * socat or node the image has. The port is an argument, never shell text.
 */
const RELAY =
  'p="$1"; ' +
  'if command -v node >/dev/null 2>&1; then exec node -e \'const s=require("net").connect(+process.argv[1],"127.0.0.1");process.stdin.pipe(s);s.pipe(process.stdout);s.on("error",()=>process.exit(1));s.on("close",()=>process.exit(0))\' "$p"; fi; ' +
  'if command -v nc >/dev/null 2>&1; then exec nc 127.0.0.1 "$p"; fi; ' +
  'if command -v socat >/dev/null 2>&1; then exec socat - "TCP:127.0.0.1:$p"; fi; ' +
  'echo "berth: no node, nc or socat in this image to reach 127.0.0.1:$p" >&2; exit 127';

/** Pipes a forwarded channel to `host:port`; `accept` is called only once the connection stands. */
export function forward(host: string, port: number, accept: () => ServerChannel, reject: () => void, onActivity: () => void): void {
  const socket = net.connect({ host, port });
  const timer = setTimeout(() => socket.destroy(new Error('connect timeout')), CONNECT_TIMEOUT_MS);
  socket.once('error', () => {
    clearTimeout(timer);
    reject();
  });
  socket.once('connect', () => {
    clearTimeout(timer);
    socket.removeAllListeners('error');
    const channel = accept();
    socket.on('data', onActivity);
    channel.on('data', onActivity);
    socket.pipe(channel).pipe(socket);
    const close = () => {
      socket.destroy();
      if (!channel.destroyed) channel.destroy();
    };
    socket.on('error', close);
    socket.on('close', close);
    channel.on('error', close);
    channel.on('close', close);
  });
}

/** Pipes a forwarded channel to the main container's own 127.0.0.1:`port` through a relay exec'd in it. */
export async function forwardInside(container: WorkspaceShell, port: number, accept: () => ServerChannel, onActivity: () => void): Promise<void> {
  const exec = await withTimeout(container.exec({ argv: ['sh', '-c', RELAY, 'sh', String(port)], stdin: true, workingDir: '/' }), EXEC_START_TIMEOUT_MS, 'starting the port relay');
  const channel = accept();
  exec.stdout.on('data', (c: Buffer) => (onActivity(), channel.writable && channel.write(c)));
  exec.stderr.resume(); // the relay's complaints are not the connection's bytes
  channel.on('data', (c: Buffer) => {
    onActivity();
    if (!exec.destroyed) exec.stdin.write(c);
  });
  channel.on('end', () => !exec.destroyed && exec.stdin.end());
  const close = () => {
    exec.destroy();
    if (!channel.destroyed) channel.end();
  };
  void exec.ended.then(close);
  channel.on('close', () => exec.destroy());
}
