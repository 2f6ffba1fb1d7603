import net from 'node:net';
import type { Duplex } from 'node:stream';
import type Docker from 'dockerode';
import { EXEC_START_TIMEOUT_MS, withTimeout } from './container-exec.js';
import type { ServerChannel } from 'ssh2';

const CONNECT_TIMEOUT_MS = 10_000;
const LOOPBACK = new Set(['localhost', '127.0.0.1', '::1', '0.0.0.0', 'ip6-localhost']);

/** the client's `localhost`: the main container, whose loopback-only servers need the relay below */
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

/**
 * Where `ssh -L` (a `direct-tcpip` channel) may go: only the workspace's own containers. The
 * client's "localhost" is the workspace's main container (where its shell runs, so
 * `-L 3000:localhost:3000` reaches the app as the shell's `curl localhost:3000` would); a
 * service name (`db`), a container name, or the IP address of one of the workspace's
 * containers is that container. Anything else (the host, the internet, another workspace)
 * is refused: the tunnel would otherwise start from Berth's own network position.
 */
export async function forwardTarget(docker: Docker, workspaceId: string, mainContainerId: string, destination: string): Promise<string | null> {
  const list = await docker.listContainers({ filters: { label: [`berth.workspace=${workspaceId}`], status: ['running'] } });
  const ipOf = (c: Docker.ContainerInfo) => Object.values(c.NetworkSettings?.Networks ?? {}).find((n) => n.IPAddress)?.IPAddress;
  const dest = destination.toLowerCase().replace(/^\[|\]$/g, '');
  if (LOOPBACK.has(dest)) {
    const main = list.find((c) => c.Id === mainContainerId);
    return (main && ipOf(main)) || null;
  }
  for (const c of list) {
    const ips = Object.values(c.NetworkSettings?.Networks ?? {})
      .map((n) => n.IPAddress)
      .filter(Boolean);
    const names = [c.Labels?.['berth.service'], ...(c.Names ?? []).map((n) => n.replace(/^\//, ''))].filter(Boolean).map((n) => n!.toLowerCase());
    if (ips.includes(dest) || names.includes(dest)) return ipOf(c) ?? null;
  }
  return null;
}

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
export async function forwardInside(container: Docker.Container, port: number, accept: () => ServerChannel, onActivity: () => void): Promise<void> {
  const exec = await withTimeout(
    container.exec({ Cmd: ['sh', '-c', RELAY, 'sh', String(port)], AttachStdin: true, AttachStdout: true, AttachStderr: true, WorkingDir: '/' }),
    EXEC_START_TIMEOUT_MS,
    'starting the port relay',
  );
  const stream = (await withTimeout(exec.start({ hijack: true, stdin: true }), EXEC_START_TIMEOUT_MS, 'starting the port relay')) as Duplex;
  const channel = accept();
  const out = { write: (c: Buffer) => (onActivity(), channel.writable && channel.write(c)) };
  container.modem.demuxStream(stream, out as never, { write: () => true } as never);
  channel.on('data', (c: Buffer) => {
    onActivity();
    if (!stream.destroyed) stream.write(c);
  });
  channel.on('end', () => !stream.destroyed && stream.end());
  const close = () => {
    stream.destroy();
    if (!channel.destroyed) channel.end();
  };
  stream.on('end', close);
  stream.on('close', close);
  stream.on('error', close);
  channel.on('close', () => stream.destroy());
}
