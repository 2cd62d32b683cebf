/** WEFT_RELAY_TRANSPORT: which transport the relayed data path uses when the relay offers UDP. */
import { describe, expect, it } from 'vitest';
import { relayTransport } from '../../src/relay-path.js';
import { RELAY_TRANSPORT_DEFAULT } from '../../src/tunables.js';

describe('relayTransport', () => {
  it('unset or empty: the default, the WebSocket (it measured faster than UDP through Node.js)', () => {
    expect(RELAY_TRANSPORT_DEFAULT).toBe('websocket');
    expect(relayTransport({})).toBe('websocket');
    expect(relayTransport({ WEFT_RELAY_TRANSPORT: '' })).toBe('websocket');
  });

  it('udp or websocket as given', () => {
    expect(relayTransport({ WEFT_RELAY_TRANSPORT: 'udp' })).toBe('udp');
    expect(relayTransport({ WEFT_RELAY_TRANSPORT: 'websocket' })).toBe('websocket');
  });

  it('anything else is an error naming the variable and the values it takes', () => {
    expect(() => relayTransport({ WEFT_RELAY_TRANSPORT: 'UDP ' })).toThrow('WEFT_RELAY_TRANSPORT: "UDP " is not udp or websocket');
  });
});
