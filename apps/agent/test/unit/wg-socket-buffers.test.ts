import { describe, expect, it } from 'vitest';
import { parseUdpHolders, raiseWireguardGoBuffers } from '../../src/wg-socket-buffers.js';

// `ss -uanpmH 'sport = :41641'` as iproute2 6.x prints it: skmem on a line of its own.
const SS = [
  'UNCONN 0      0            0.0.0.0:41641      0.0.0.0:*    users:(("wireguard-go",pid=812,fd=9))',
  '\t skmem:(r0,rb212992,t0,tb212992,f0,w0,o0,bl0,d3)',
  'UNCONN 0      0               [::]:41641         [::]:*    users:(("wireguard-go",pid=812,fd=10))',
  '\t skmem:(r0,rb14680064,t0,tb14680064,f0,w0,o0,bl0,d0)',
  'UNCONN 0      0          127.0.0.1:41641      0.0.0.0:*    users:(("node",pid=700,fd=21),("node",pid=701,fd=21))',
  '\t skmem:(r0,rb212992,t0,tb212992,f0,w0,o0,bl0,d0)',
].join('\n');

describe('parseUdpHolders', () => {
  it('one entry per process holding each socket, with its receive buffer', () => {
    expect(parseUdpHolders(SS)).toEqual([
      { local: '0.0.0.0:41641', process: 'wireguard-go', pid: 812, fd: 9, rcvbuf: 212992 },
      { local: '[::]:41641', process: 'wireguard-go', pid: 812, fd: 10, rcvbuf: 14680064 },
      { local: '127.0.0.1:41641', process: 'node', pid: 700, fd: 21, rcvbuf: 212992 },
      { local: '127.0.0.1:41641', process: 'node', pid: 701, fd: 21, rcvbuf: 212992 },
    ]);
  });

  it('skmem on the same line, no skmem, no users, and junk', () => {
    expect(parseUdpHolders('UNCONN 0 0 0.0.0.0:5 0.0.0.0:* users:(("wireguard-go",pid=1,fd=3)) skmem:(r0,rb4096,t0)')[0]).toMatchObject({ pid: 1, fd: 3, rcvbuf: 4096 });
    expect(parseUdpHolders('UNCONN 0 0 0.0.0.0:5 0.0.0.0:* users:(("wireguard-go",pid=1,fd=3))')[0]).toMatchObject({ rcvbuf: null });
    expect(parseUdpHolders('UNCONN 0 0 0.0.0.0:5 0.0.0.0:*')).toEqual([]);
    expect(parseUdpHolders('')).toEqual([]);
    expect(parseUdpHolders('garbage\n\n  skmem:(rb1)')).toEqual([]);
  });
});

describe('raiseWireguardGoBuffers', () => {
  const BYTES = 7 * 1024 * 1024;

  it("raises only wireguard-go's sockets on the port that are below the size; reports the smallest buffer after", async () => {
    const calls: Array<[number, number, number]> = [];
    const r = await raiseWireguardGoBuffers(41641, BYTES, { ss: async () => SS, raise: (pid, fd, n) => (calls.push([pid, fd, n]), 2 * n) });
    expect(calls).toEqual([[812, 9, BYTES]]); // fd 10 already has it; node's socket is not wireguard-go's
    expect(r).toEqual({ raised: 1, rcvbuf: 2 * BYTES });
  });

  it('says why when there is nothing to raise or it failed, and never throws', async () => {
    expect(await raiseWireguardGoBuffers(41641, BYTES, { ss: async () => '', raise: () => 0 })).toEqual({ skipped: 'no wireguard-go socket on UDP 41641' });
    expect(await raiseWireguardGoBuffers(41641, BYTES, { ss: async () => { throw new Error('spawn ss ENOENT'); }, raise: () => 0 }))
      .toEqual({ skipped: 'ss could not list UDP port 41641: spawn ss ENOENT' });
    expect(await raiseWireguardGoBuffers(41641, BYTES, { ss: async () => SS, raise: () => -1 }))
      .toEqual({ skipped: 'could not set the buffers of 0.0.0.0:41641 (pid 812 fd 9): errno 1' });
  });
});
