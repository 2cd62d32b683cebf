// A reflector for the NAT lab (run with `ip netns exec NS node udp-reflector.mjs PORT...`): on
// each port, answers every UDP datagram, and every TCP connection, with the source address it came
// from, "IP:PORT". Prints "listening" once every port is bound. Plain JS so it starts without tsx.
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';
const ports = process.argv.slice(2).map(Number);
await Promise.all(ports.map((port) => new Promise((resolve, reject) => {
  const s = createSocket('udp4');
  s.on('message', (_msg, r) => s.send(`${r.address}:${r.port}`, r.port, r.address));
  s.once('error', reject);
  s.bind(port, '0.0.0.0', resolve);
}).then(() => new Promise((resolve, reject) => {
  const t = createServer((c) => c.end(`${c.remoteAddress}:${c.remotePort}`));
  t.once('error', reject);
  t.listen(port, '0.0.0.0', resolve);
}))));
process.stdout.write(`listening ${ports.join(' ')}\n`);
