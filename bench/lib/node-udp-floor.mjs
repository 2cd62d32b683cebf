// The floor of a Node.js UDP responder, for bench:stun: answers every datagram on 127.0.0.1:PORT
// with a fixed 48-byte buffer carrying the request's transaction ID (no STUN work at all), with
// the same socket options as StunServer (literal lookup, 4 MiB receive / 1 MiB send buffers).
// Not a STUN server (the generator's address check fails on it): it shows what one Node.js event
// loop can answer on this machine, so the rest of weft's gap to coturn is Node's per-datagram cost.
import { createSocket } from 'node:dgram';

const s = createSocket({ type: 'udp4', lookup: (address, _family, cb) => cb(null, address, 4) });
const body = Buffer.alloc(48);
body.writeUInt16BE(0x0101, 0);
body.writeUInt16BE(28, 2);
s.on('message', (msg, from) => {
  const out = Buffer.allocUnsafe(48);
  body.copy(out);
  msg.copy(out, 4, 4, 20);
  s.send(out, from.port, from.address);
});
s.bind(Number(process.argv[2]), '127.0.0.1', () => {
  try {
    s.setRecvBufferSize(4 << 20);
    s.setSendBufferSize(1 << 20);
  } catch {
    // capped by the kernel
  }
  process.stderr.write('STUN (udp) on floor\n');
});
