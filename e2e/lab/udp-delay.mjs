// A UDP delay forwarder for the lab (run with `ip netns exec NS node udp-delay.mjs CONFIG.json`):
// this kernel has no netem qdisc (CONFIG_NET_SCH_NETEM is off), so a region is made "far" here
// instead. CONFIG is {"routes": [{"name": "one", "listen": 3478, "to": "IP:PORT", "delayMs": 40}]}:
// each route listens on its port and passes every datagram on to `to` after `delayMs`; answers
// come straight back. Each client (address:port) gets one upstream socket for all routes, so every
// upstream sees the same source port from it (an endpoint-independent mapping, like a home NAT).
// SIGHUP re-reads CONFIG (new delays; listen ports and upstreams stay as started) and prints
// "delays NAME=MS ..." once it applies, as it does at start. SIGUSR2 prints "received NAME=N ..."
// (datagrams each route has received from clients so far). Bounded: at most MAX_CLIENTS clients
// and MAX_DELAYED datagrams held, idle clients forgotten after CLIENT_IDLE_MS; what does not fit
// is dropped and counted (printed on SIGTERM). Plain JS so it starts without tsx.
import { createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';

// A netcheck opens a socket of its own each time: every one is a new client here.
const MAX_CLIENTS = 1024;
const MAX_DELAYED = 4096;
const CLIENT_IDLE_MS = 30_000;

const configPath = process.argv[2];
if (!configPath) {
  process.stderr.write('usage: udp-delay.mjs CONFIG.json\n');
  process.exit(2);
}
const readRoutes = () => JSON.parse(readFileSync(configPath, 'utf8')).routes;
const routes = readRoutes().map((r) => {
  const i = r.to.lastIndexOf(':');
  return { name: r.name, listen: r.listen, host: r.to.slice(0, i), port: Number(r.to.slice(i + 1)), delayMs: r.delayMs, received: 0, socket: createSocket('udp4') };
});
/** "address:port" of a client -> its upstream socket and when it last sent. */
const clients = new Map();
const dropped = { clients: 0, delayed: 0 };
let delayed = 0;

function upstreamFor(address, port) {
  const key = `${address}:${port}`;
  let c = clients.get(key);
  if (c) return c;
  if (clients.size >= MAX_CLIENTS) return undefined;
  const socket = createSocket('udp4');
  c = { socket, lastSeen: Date.now() };
  // An answer from a route's upstream goes back to the client from that route's port.
  socket.on('message', (msg, from) => {
    const route = routes.find((r) => r.host === from.address && r.port === from.port);
    route?.socket.send(msg, port, address);
  });
  socket.bind(0);
  clients.set(key, c);
  return c;
}

for (const route of routes) {
  route.socket.on('message', (msg, from) => {
    route.received++;
    const c = upstreamFor(from.address, from.port);
    if (!c) return void dropped.clients++;
    if (delayed >= MAX_DELAYED) return void dropped.delayed++;
    c.lastSeen = Date.now();
    delayed++;
    setTimeout(() => {
      delayed--;
      if (clients.get(`${from.address}:${from.port}`) === c) c.socket.send(msg, route.port, route.host);
    }, route.delayMs);
  });
}

const printDelays = () => process.stdout.write(`delays ${routes.map((r) => `${r.name}=${r.delayMs}`).join(' ')}\n`);
process.on('SIGHUP', () => {
  try {
    for (const r of readRoutes()) {
      const route = routes.find((x) => x.name === r.name);
      if (route) route.delayMs = r.delayMs;
    }
    printDelays();
  } catch (err) {
    process.stderr.write(`udp-delay: kept the delays: ${err.message}\n`);
  }
});
process.on('SIGUSR2', () => process.stdout.write(`received ${routes.map((r) => `${r.name}=${r.received}`).join(' ')}\n`));
process.on('SIGTERM', () => {
  process.stdout.write(`udp-delay: stopped, dropped ${JSON.stringify(dropped)}\n`);
  process.exit(0);
});
setInterval(() => {
  const now = Date.now();
  for (const [key, c] of clients) {
    if (now - c.lastSeen > CLIENT_IDLE_MS) {
      c.socket.close();
      clients.delete(key);
    }
  }
}, CLIENT_IDLE_MS / 4).unref();

await Promise.all(routes.map((r) => new Promise((resolve, reject) => {
  r.socket.once('error', reject);
  r.socket.bind(r.listen, '0.0.0.0', resolve);
})));
printDelays();
