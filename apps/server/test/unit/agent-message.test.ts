import { describe, expect, it } from 'vitest';
import { CloseCode, MAX_AGENT_MESSAGE_BYTES } from '@weft/protocol';
import { readAgentMessage } from '../../src/agent/agent-message.js';
import { sendableEndpoints } from '../../src/state/dto.js';

const read = (v: unknown) => readAgentMessage(Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)), false);

describe('readAgentMessage', () => {
  it('names the bad endpoint and why in one line', () => {
    expect(read({ type: 'endpoints', endpoints: ['192.0.2.1:1', '999.999.999.999:99999'] }))
      .toEqual({ ok: false, code: CloseCode.BadMessage, reason: 'endpoints[1]: IPv4 address: octet 1 is 999, outside 0-255' });
  });

  it('keeps a close reason within the 123 bytes a close frame holds, printable only', () => {
    const r = read({ type: 'endpoints', endpoints: [], ['\u00e9\n'.repeat(200)]: 1 });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(Buffer.byteLength(r.reason)).toBeLessThanOrEqual(123);
    expect(r.reason).toMatch(/^[\x20-\x7e]+$/);
  });

  it('refuses non-JSON and binary frames, accepts a valid report', () => {
    expect(read('{nope')).toEqual({ ok: false, code: CloseCode.BadMessage, reason: 'message is not JSON' });
    expect(readAgentMessage(Buffer.from('{}'), true).ok).toBe(false);
    expect(read({ type: 'endpoints', endpoints: ['[::ffff:192.0.2.1]:41641'] })).toEqual({ ok: true, msg: { type: 'endpoints', endpoints: ['[::ffff:192.0.2.1]:41641'] } });
  });
});

describe('readAgentMessage: nat', () => {
  it('takes a verdict with a known or unknown mapping, and refuses anything else naming the field', () => {
    for (const m of [true, false, null]) expect(read({ type: 'nat', nat: { udp: true, mappingVariesByDestination: m } })).toEqual({ ok: true, msg: { type: 'nat', nat: { udp: true, mappingVariesByDestination: m } } });
    const refused = (v: unknown) => {
      const r = read(v);
      return r.ok ? 'taken' : `${r.code} ${r.reason}`;
    };
    expect(refused({ type: 'nat', nat: { udp: 1, mappingVariesByDestination: null } })).toMatch(/^4400 nat\.udp: /);
    expect(refused({ type: 'nat', nat: { udp: true, mappingVariesByDestination: 'yes' } })).toMatch(/^4400 nat\.mappingVariesByDestination: /);
    expect(refused({ type: 'nat', nat: { udp: true, mappingVariesByDestination: null, portPreserved: true } })).toMatch(/^4400 nat: /);
    expect(refused({ type: 'nat', nat: { udp: true, mappingVariesByDestination: null }, extra: 1 })).toMatch(/^4400 /);
  });
});

describe('readAgentMessage size limit', () => {
  it('refuses a message over MAX_AGENT_MESSAGE_BYTES with TooBig, though the WebSocket server admits larger relay frames', () => {
    // Multi-byte characters: the limit is in bytes, as the WebSocket server's limit was.
    const r = read(`"${'\u00e9'.repeat(MAX_AGENT_MESSAGE_BYTES / 2)}"`);
    expect(r).toMatchObject({ ok: false, code: CloseCode.TooBig });
  });
});

describe('sendableEndpoints', () => {
  it('keeps endpoints stored before strict parsing from reaching peers', () => {
    expect(sendableEndpoints(['999.999.999.999:99999', '192.0.2.1:41641', '[fe80::1%eth0]:1'])).toEqual(['192.0.2.1:41641']);
  });
});
