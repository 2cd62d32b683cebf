/**
 * @weft/relay: the relay and STUN server core, usable embedded (weft-server) or standalone
 * (weft-relay). The STUN service: the codec (RFC 8489 Binding, RFC 3489 clients, RFC
 * 5769-tested), a Binding client, and `StunServer` on one UDP socket. The DERP-style packet relay:
 * its frames (`relay-frame.ts`), `RelayServer` (forwarding by node key over WebSocket sockets the
 * embedder authenticated) and `RelayClient`.
 *
 * Must not import @weft/db or @weft/policy: a relay knows nothing of storage or access rules;
 * whoever embeds it tells it who may talk.
 */
export * from './stun-constants.js';
export { parseMessage, encodeMessage, getAttribute, fingerprintOf, messageType, splitMessageType, type StunMessage, type StunAttribute, type ParseResult, type EncodeOptions } from './stun-message.js';
export { checkMessageIntegrity, messageIntegrity, shortTermKey } from './stun-integrity.js';
export { encodeMappedAddress, decodeMappedAddress, encodeXorMappedAddress, decodeXorMappedAddress, addressBytes, addressText, type MappedAddress } from './stun-address.js';
export { answerBinding, BindingResponder, encodeBindingSuccess, unknownRequired, encodeErrorCode, encodeUnknownAttributes, type BindingAnswer, type Peer } from './stun-binding.js';
export { bindingRequest, encodeBindingRequest, readBindingResponse, StunError, type BindingOptions } from './stun-client.js';
export { StunServer, reusePortSupported, type StunCounters, type StunLog, type StunServerOptions } from './stun-server.js';
export { parseListenAddress, formatListenAddress, type ListenAddress } from './listen-address.js';
export * from './wg-constants.js';
export { openInitiation, mac1Valid, responderKey, generateResponderPrivateKey, looksLikeInitiation, tai64nToUnixMs, type ResponderKey, type OpenedInitiation, type InitiationReject } from './wg-initiation.js';
export { WgResponder, type WgResponderCounters, type WgResponderOptions, type WgReceived, type WgRefusal } from './wg-responder.js';
export * from './relay-frame.js';
export { RelayServer, relayOverStunPort, passesOn, type MeshPeerKind, type RelayCounters, type RelayServerOptions, type RelaySocket, type RelayStream, type RelayUdpTransport, type RelayMeshLink } from './relay-server.js';
export * from './relay-udp.js';
export * from './relay-mesh.js';
export { RelayClient, type RelayClientCounters, type RelayClientHandlers, type RelayClientSocket } from './relay-client.js';
export { RelayUdpClient, type RelayUdpClientOptions } from './relay-udp-client.js';
export { udpBatchAddon, type UdpBatchAddon } from './native-udp.js';
