// One UDP socket asking reflectors (udp-reflector.mjs) what source address they see (`node
// udp-probe.mjs LOCALPORT TARGET...`, run inside a lab namespace): the same socket for every
// target, so the answers say how the NAT maps it per destination. TARGET is HOST:PORT (UDP) or
// tcp:HOST:PORT (one TCP connection from a fresh port). Prints {"TARGET":"IP:PORT" | null, ...};
// null = no answer within 1.5 s (UDP: three tries).
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
const [localPort, ...targets] = process.argv.slice(2);
const s = createSocket('udp4');
await new Promise((resolve) => s.bind(Number(localPort), '0.0.0.0', resolve));
const seen = {};
for (const t of targets) {
  if (t.startsWith('tcp:')) {
    seen[t] = await tcp(t.slice(4));
    continue;
  }
  const i = t.lastIndexOf(':');
  const host = t.slice(0, i);
  const port = Number(t.slice(i + 1));
  seen[t] = await new Promise((resolve) => {
    let tries = 0;
    const onMessage = (msg, r) => {
      if (r.address !== host || r.port !== port) return;
      clearInterval(timer);
      s.off('message', onMessage);
      resolve(msg.toString());
    };
    s.on('message', onMessage);
    const send = () => {
      if (tries++ === 3) {
        clearInterval(timer);
        s.off('message', onMessage);
        return resolve(null);
      }
      s.send(t, port, host);
    };
    const timer = setInterval(send, 500);
    send();
  });
}
s.close();
process.stdout.write(JSON.stringify(seen) + '\n');

function tcp(target) {
  const i = target.lastIndexOf(':');
  return new Promise((resolve) => {
    let text = '';
    const c = connect({ host: target.slice(0, i), port: Number(target.slice(i + 1)), timeout: 1500 });
    c.on('data', (d) => (text += d));
    c.on('end', () => resolve(text));
    c.on('timeout', () => { c.destroy(); resolve(null); });
    c.on('error', () => resolve(null));
  });
}
