// A scripted control server for lab tests of what the agent does with a netmap the real server
// cannot send yet (the packet filter: the mapper side is another slice). Plain JS so it starts
// without tsx; run inside a lab host: node scripted-control.mjs PORT DIR PROTOCOL_VERSION HOST...
//
// Registration answers `registered` at once; node HOST[i] gets id i+1, 100.64.0.(i+1) and
// fd7a:115c:a1e0::(i+1). Every connected node gets a netmap of all the others (their reported
// endpoints), with `packetFilter` read from DIR/filter-HOST.json when that file exists (absent:
// no filter). Whenever a node's netmap would change (a filter file written, an endpoint
// reported), a new netmap is sent. Machine tokens are read, not verified: this is a test double.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { WebSocketServer } from 'ws';

const [portText, dir, pvText, ...hosts] = process.argv.slice(2);
const protocolVersion = Number(pvText);
/** machine key -> node */
const nodes = new Map();

function machineKeyOf(req) {
  const token = (req.headers.authorization ?? '').replace(/^Bearer /, '');
  return JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString()).sub;
}

function selfOf(n) {
  return { id: n.id, name: n.name, user: 'lab', ipv4: `100.64.0.${n.id}`, ipv6: `fd7a:115c:a1e0::${n.id.toString(16)}`, nodeKey: n.nodeKey, expiresAt: null };
}

function netmapFor(n) {
  const peers = [...nodes.values()].filter((p) => p !== n).sort((a, b) => a.id - b.id).map((p) => {
    const s = selfOf(p);
    return { id: p.id, name: p.name, user: 'lab', nodeKey: p.nodeKey, ipv4: s.ipv4, ipv6: s.ipv6,
      allowedIps: [`${s.ipv4}/32`, `${s.ipv6}/128`], endpoints: p.endpoints, online: p.socket !== null, lastSeen: null };
  });
  let filter;
  try {
    filter = JSON.parse(readFileSync(join(dir, `filter-${n.name}.json`), 'utf8'));
  } catch {
    filter = undefined; // no file (or half-written: the next poll sends it)
  }
  return { type: 'netmap', protocolVersion, self: selfOf(n), peers, ...(filter !== undefined && { packetFilter: filter }) };
}

function sendAll() {
  for (const n of nodes.values()) {
    if (!n.socket) continue;
    const msg = netmapFor(n);
    const text = JSON.stringify(msg);
    if (text === n.lastSent) continue;
    n.lastSent = text;
    n.seq += 1;
    n.socket.send(JSON.stringify({ ...msg, seq: n.seq }));
    console.log(`sent netmap to ${n.name} seq ${n.seq} peers ${msg.peers.length} filter ${msg.packetFilter ? msg.packetFilter.length : 'none'}`);
  }
}

const server = createServer((req, res) => {
  let body = '';
  req.on('data', (c) => (body += c));
  req.on('end', () => {
    if (req.method !== 'POST' || req.url !== '/agent/v1/register') {
      res.writeHead(404, { 'content-type': 'application/problem+json' }).end(JSON.stringify({ code: 'not_found', title: 'not found', status: 404, retryable: false }));
      return;
    }
    const reg = JSON.parse(body);
    const key = machineKeyOf(req);
    let n = nodes.get(key);
    if (!n) {
      const index = hosts.indexOf(reg.hostname);
      n = { id: index >= 0 ? index + 1 : 100 + nodes.size, name: reg.hostname, nodeKey: reg.nodeKey, endpoints: [], socket: null, seq: 0, lastSent: '' };
      nodes.set(key, n);
      console.log(`registered ${n.name} id ${n.id}`);
    }
    n.nodeKey = reg.nodeKey;
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'registered', node: selfOf(n) }));
  });
});

const wss = new WebSocketServer({ noServer: true });
server.on('upgrade', (req, socket, head) => {
  // Only the agent channel: no relay here (an agent dialing /api/v1/relay must not replace its control socket).
  if (req.url !== '/agent/v1') {
    socket.end('HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n');
    return;
  }
  const n = nodes.get(machineKeyOf(req));
  if (!n) {
    socket.end('HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\n\r\n');
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => {
    n.socket = ws;
    n.seq = 0;
    n.lastSent = '';
    console.log(`connected ${n.name}`);
    ws.on('message', (data) => {
      const m = JSON.parse(data.toString());
      if (m.type === 'endpoints') n.endpoints = m.endpoints;
      if (m.type === 'resync') n.lastSent = '';
      sendAll();
    });
    ws.on('close', () => {
      if (n.socket === ws) n.socket = null;
      sendAll();
    });
    sendAll();
  });
});

setInterval(sendAll, 100);
server.listen(Number(portText), '0.0.0.0', () => console.log(`scripted control listening on ${portText}`));
