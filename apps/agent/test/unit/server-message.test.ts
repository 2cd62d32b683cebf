import { constants, deflateRawSync, deflateSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { messageText, readServerMessage } from '../../src/server-message.js';
import { Netmap } from '../../src/netmap.js';
import { peer, self } from './fixtures.js';

const netmap = (peers: unknown[]) => ({ type: 'netmap', seq: 1, protocolVersion: 1, self, peers });

/** The malformed peers of the class, each beside good ones. */
const malformed: [string, unknown][] = [
  ['an endpoint out of octet and port range', peer(7, { endpoints: ['999.999.999.999:99999'] })],
  ['a port of 0', peer(7, { endpoints: ['192.0.2.7:0'] })],
  ['an endpoint with a zone id carrying a newline (UAPI line injection)', peer(7, { endpoints: ['[fe80::1%eth0\nprivate_key=00]:1'] })],
  ['a bad key', peer(7, { nodeKey: 'nodekey:xyz' })],
  ['a bad IPv4 address', peer(7, { ipv4: '100.64.0.256', allowedIps: [] })],
  ['a bad IPv6 address', peer(7, { ipv6: 'fd7a::1::2', allowedIps: [] })],
  ['a bad allowed IP', peer(7, { allowedIps: ['100.64.0.7/33'] })],
  ['a field of the wrong type', { ...peer(7), online: 'yes' }],
];

describe('reading server messages one peer at a time', () => {
  it.each(malformed)('a netmap with one peer with %s applies every other peer and reports that one', (_what, bad) => {
    const read = readServerMessage(netmap([peer(2), bad, peer(9)]));
    if (!read.ok) throw new Error(read.reason);
    expect(read.msg.type === 'netmap' && read.msg.peers.map((p) => p.id)).toEqual([2, 9]);
    expect(read.skipped).toHaveLength(1);
    expect(read.skipped[0]!.id).toBe(7);
    expect(read.skipped[0]!.reason).toMatch(/^[\x20-\x7e]+$/);
    const nm = new Netmap();
    const change = nm.apply(read.msg, read.skipped);
    expect(change.kind).toBe('full');
    expect(nm.peers.map((p) => p.id)).toEqual([2, 9]);
    expect(nm.skipped).toEqual(read.skipped);
  });

  it('names the field and the problem', () => {
    const read = readServerMessage(netmap([peer(7, { endpoints: ['192.0.2.7:41641', '999.999.999.999:99999'] })]));
    expect(read.ok && read.skipped).toEqual([{ id: 7, reason: 'endpoints[1]: IPv4 address: octet 1 is 999, outside 0-255' }]);
  });

  it('an entry without a usable id is skipped and reported without one', () => {
    const read = readServerMessage(netmap([peer(2), { ...peer(3), id: 'three' }, null]));
    expect(read.ok && read.skipped.map((s) => s.id)).toEqual([null, null]);
  });

  it('a bad upsert or patch in a delta removes the peer it names and applies the rest', () => {
    const nm = new Netmap();
    nm.apply(readOk(netmap([peer(2), peer(3), peer(4)])).msg);
    const read = readOk({
      type: 'delta', seq: 2,
      upsert: [peer(3, { endpoints: ['192.0.2.3:65536'] }), peer(5)],
      patch: [{ id: 4, endpoints: ['[::1]:0'] }, { id: 2, endpoints: ['192.0.2.22:41641'] }],
    });
    const change = nm.apply(read.msg, read.skipped);
    if (change.kind !== 'delta') throw new Error(change.kind);
    expect(change.removed.map((p) => p.id).sort()).toEqual([3, 4]);
    expect(change.upserted.map((u) => u.peer.id)).toEqual([5]);
    expect(change.patched.map((p) => [p.peer.id, p.peer.endpoints])).toEqual([[2, ['192.0.2.22:41641']]]);
    expect(nm.peers.map((p) => p.id)).toEqual([2, 5]);
    expect(nm.skipped.map((s) => s.id)).toEqual([3, 4]);
    // The server sending peer 3 again, valid, brings it back and clears its record.
    const again = readOk({ type: 'delta', seq: 3, upsert: [peer(3)] });
    nm.apply(again.msg, again.skipped);
    expect(nm.peers.map((p) => p.id)).toEqual([2, 3, 5]);
    expect(nm.skipped.map((s) => s.id)).toEqual([4]);
    // A fresh netmap starts the records afresh.
    nm.resetConnection();
    nm.apply(readOk(netmap([peer(2)])).msg);
    expect(nm.skipped).toEqual([]);
  });

  it('a peer with this node\'s own key or another peer\'s key is skipped, not handed to WireGuard', () => {
    const nm = new Netmap();
    const change = nm.apply(readOk(netmap([peer(2), peer(3, { nodeKey: self.nodeKey }), peer(4, { nodeKey: peer(2).nodeKey }), peer(5), peer(5)])).msg);
    expect(change.kind === 'full' && change.peers.map((p) => p.id)).toEqual([2]);
    expect(nm.skipped).toEqual([
      { id: 3, reason: "nodeKey: is this node's own key" },
      { id: 4, reason: 'nodeKey: peer 2 has the same key' },
      { id: 5, reason: 'id: listed more than once' },
    ]);
    const d = nm.apply(readOk({ type: 'delta', seq: 2, upsert: [peer(6, { nodeKey: peer(2).nodeKey })] }).msg);
    expect(d.kind === 'delta' && d.upserted).toEqual([]);
    expect(nm.skipped.map((s) => s.id)).toEqual([3, 4, 5, 6]);
  });

  it('a malformed responder entry is left out and the netmap still applies; one with a peer\'s or this node\'s key is not given to WireGuard', () => {
    const good = { publicKey: `nodekey:${'cd'.repeat(32)}`, endpoint: '192.0.2.1:3478' };
    const read = readServerMessage({ ...netmap([peer(2)]), wgResponders: [{ publicKey: 'nodekey:xyz', endpoint: '192.0.2.1:3478' }, { ...good, endpoint: '[fe80::1%eth0]:1' }, good, { publicKey: peer(2).nodeKey, endpoint: '192.0.2.1:3478' }, { publicKey: self.nodeKey, endpoint: '192.0.2.1:3478' }] });
    if (!read.ok) throw new Error(read.reason);
    expect(read.skipped).toEqual([]);
    const nm = new Netmap();
    const change = nm.apply(read.msg, read.skipped);
    expect(change.kind === 'full' && change.peers.map((p) => p.id)).toEqual([2]);
    expect(nm.responders).toEqual([good]);
  });

  it('a bad envelope (seq, self) drops the whole message', () => {
    expect(readServerMessage({ ...netmap([]), seq: 'x' }).ok).toBe(false);
    expect(readServerMessage({ ...netmap([]), self: { ...self, ipv4: '1.2.3' } }).ok).toBe(false);
    expect(readServerMessage({ type: 'delta', seq: 2, upsert: 'nope' }).ok).toBe(false);
  });
});

function readOk(json: unknown) {
  const r = readServerMessage(json);
  if (!r.ok) throw new Error(r.reason);
  return r;
}

describe('reading the packet filter', () => {
  const rule = { srcIPs: ['100.64.0.0/30', 'fd7a::2'], dstPorts: [{ ip: '100.64.0.1', ports: '22-22' }], protos: [6, 17] };
  it('a netmap and a delta carry packetFilter through to what is applied', () => {
    const read = readServerMessage({ ...netmap([peer(2)]), packetFilter: [rule] });
    if (!read.ok) throw new Error(read.reason);
    expect(read.msg.type === 'netmap' && read.msg.packetFilter).toEqual([rule]);
    const delta = readServerMessage({ type: 'delta', seq: 2, packetFilter: null });
    if (!delta.ok) throw new Error(delta.reason);
    expect(delta.msg.type === 'delta' && delta.msg.packetFilter).toBeNull();
  });
  it('a malformed packet filter drops the whole message (a filter is never half applied)', () => {
    const read = readServerMessage({ ...netmap([peer(2)]), packetFilter: [{ ...rule, protos: ['tcp'] }] });
    expect(read.ok).toBe(false);
    if (!read.ok) expect(read.reason).toMatch(/packetFilter/);
  });
});

describe('reading a compact resume', () => {
  const resume = (endpoints: string[][]) => ({
    type: 'resume', seq: 1, revision: 'a'.repeat(32), protocolVersion: 1, self,
    presence: { base: 0, state: 'aa', lastSeen: [null, null] }, endpoints,
  });

  it('takes good endpoints by position', () => {
    const read = readOk(resume([['192.0.2.2:41641'], []]));
    expect(read.msg.type === 'resume' && read.msg.endpoints).toEqual([['192.0.2.2:41641'], []]);
  });

  it('refuses the whole message for one bad endpoint, naming its position (no id to skip one peer by)', () => {
    const read = readServerMessage(resume([['192.0.2.2:41641'], ['192.0.2.3:41641', '[::1]:0']]));
    expect(read.ok).toBe(false);
    expect(!read.ok && read.reason).toBe('endpoints[1][1]: port is 0, outside 1-65535');
  });

  it('refuses an endpoint that would inject a line into WireGuard\'s configuration', () => {
    const read = readServerMessage(resume([[], ['[fe80::1%eth0\nprivate_key=00]:1']]));
    expect(read.ok).toBe(false);
    expect(!read.ok && read.reason).toMatch(/^endpoints\[1\]/);
    expect(!read.ok && read.reason).toMatch(/^[\x20-\x7e]+$/);
  });
});

describe('the text of a control message', () => {
  const json = JSON.stringify(netmap([peer(2), peer(3)]));

  it('a text message is its text; a binary one is raw deflate, inflated', () => {
    expect(messageText(Buffer.from(json), false)).toEqual({ ok: true, text: json });
    expect(messageText(deflateRawSync(json), true)).toEqual({ ok: true, text: json });
  });

  it('refuses a message that inflates past the bound (a deflate bomb), saying so', () => {
    const bomb = deflateRawSync(Buffer.alloc(1 << 20));
    expect(bomb.length).toBeLessThan(2048);
    expect(messageText(bomb, true, 1 << 19)).toEqual({ ok: false, reason: `compressed message inflates to more than ${1 << 19} bytes` });
    expect(messageText(bomb, true, 1 << 20)).toMatchObject({ ok: true });
  });

  it('refuses what is not a whole raw deflate stream: a zlib stream, a stream cut short', () => {
    const gz = messageText(deflateSync(json), true);
    expect(gz).toMatchObject({ ok: false, reason: expect.stringMatching(/^compressed message is not a whole raw deflate stream: /) });
    const cut = messageText(deflateRawSync(json, { finishFlush: constants.Z_SYNC_FLUSH }), true);
    expect(cut).toMatchObject({ ok: false, reason: expect.stringMatching(/^compressed message is not a whole raw deflate stream: /) });
  });
});
