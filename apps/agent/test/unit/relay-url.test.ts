/** Where the agent's relay session goes for a relay's base URL (the control server's, or a region's relayUrl). */
import { describe, expect, it } from 'vitest';
import { relayUrl } from '../../src/relay-path.js';

describe('relayUrl', () => {
  it('maps http(s) and ws(s) base URLs to the relay WebSocket, keeping TLS (a wss:// region stays wss://)', () => {
    expect(relayUrl('https://weft.example.com')).toBe('wss://weft.example.com/api/v1/relay');
    expect(relayUrl('http://10.0.0.1:8080/')).toBe('ws://10.0.0.1:8080/api/v1/relay');
    expect(relayUrl('wss://relay-fra.example.com')).toBe('wss://relay-fra.example.com/api/v1/relay');
    expect(relayUrl('ws://10.0.0.2:8443')).toBe('ws://10.0.0.2:8443/api/v1/relay');
    expect(relayUrl('https://example.com/weft/')).toBe('wss://example.com/weft/api/v1/relay');
  });
});
