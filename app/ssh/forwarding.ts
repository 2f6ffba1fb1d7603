import net from 'node:net';
import type Docker from 'dockerode';
import type { ServerChannel } from 'ssh2';

const CONNECT_TIMEOUT_MS = 10_000;
const LOOPBACK = new Set(['localhost', '127.0.0.1', '::1', '0.0.0.0', 'ip6-localhost']);

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
