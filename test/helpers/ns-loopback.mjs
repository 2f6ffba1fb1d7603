// Run inside a test cluster host's network namespace (test/helpers/cluster.ts): makes the
// machine's loopback services (PostgreSQL, Redis, the fake GitHub…) answer on this namespace's
// 127.0.0.1 too, each port through a unix socket the test process serves (a unix socket is a
// file, so it crosses network namespaces). Arguments: <port>=<socket path> …; prints "ready".
import net from 'node:net';

const pairs = process.argv.slice(2).map((a) => {
  const [port, socket] = a.split('=');
  return { port: Number(port), socket };
});
let listening = 0;
for (const { port, socket } of pairs) {
  const server = net.createServer((client) => {
    const upstream = net.connect(socket);
    client.pipe(upstream).pipe(client);
    const close = () => (client.destroy(), upstream.destroy());
    client.on('error', close);
    upstream.on('error', close);
  });
  server.listen(port, '127.0.0.1', () => {
    if (++listening === pairs.length) process.stdout.write('ready\n');
  });
}
