import { describe, expect, it } from 'vitest';
import { socketInodes } from '../src/socket-owner.js';

describe('socketInodes', () => {
  const table = [
    'Num       RefCount Protocol Flags    Type St Inode Path',
    '0000000000000000: 00000002 00000000 00010000 0001 01 41213 /var/run/wireguard/weft0.sock',
    '0000000000000000: 00000003 00000000 00000000 0001 03 41260 /var/run/wireguard/weft0.sock',
    '0000000000000000: 00000002 00000000 00010000 0001 01 41300 /run/wireguard/weft1.sock',
    '0000000000000000: 00000003 00000000 00000000 0001 03 41301',
  ].join('\n');

  it('finds the listening and accepted sockets bound to a path, /run and /var/run alike', () => {
    expect([...socketInodes(table, '/var/run/wireguard/weft0.sock')]).toEqual(['41213', '41260']);
    expect([...socketInodes(table, '/var/run/wireguard/weft1.sock')]).toEqual(['41300']);
    expect(socketInodes(table, '/var/run/wireguard/other.sock').size).toBe(0);
  });
});
