/**
 * @weft/wg — programming WireGuard on a host. Owns: the Device contract the agent codes against,
 * the userspace backend (spawns and supervises wireguard-go, talks UAPI), the kernel backend
 * (`ip link ... type wireguard` + `wg`), incremental peer diffing, interface addresses/MTU/routes
 * via iproute2, and config export for node-less peers (wg-quick text, QR codes).
 * Must not import server code (apps/*, @weft/db); depends only on @weft/crypto.
 */
export type {
  Backend, BackendChoice, Device, InterfaceConfig, OpenOptions, PeerConfig, PeerStats,
} from './device.js';
export { openDevice, chooseBackend, kernelWireGuardAvailable } from './open.js';
export { openUserspace, UserspaceDevice, findBinary, checkInterfaceName } from './userspace.js';
export type { UserspaceOptions } from './userspace.js';
export { KernelDriver, wgSetCommand, kernelLinkAddCommand } from './kernel.js';
export { ManagedDevice } from './managed-device.js';
export type { Driver } from './managed-device.js';
export {
  UapiClient, encodeSet, parseGet, parseReply, uapiRequest, uapiSocketPath, GET_REQUEST, UAPI_SOCKET_DIR,
} from './uapi.js';
export type { DeviceState, InterfaceSet } from './uapi.js';
export { parseWgDump } from './wg-dump.js';
export { diffPeers, peerOp, peerOps, normalizePeer } from './peer-diff.js';
export type { PeerOp, PeerState } from './peer-diff.js';
export { normalizeCidr, normalizeEndpoint } from './cidr.js';
export { DEFAULT_MTU, linkPlan, linkCleanupPlan, applyLink, batchScript } from './routes.js';
export type { LinkConfig } from './routes.js';
export { toWgQuick, qrTerminal, qrSvg, qrPng } from './export.js';
export type { WgQuickConfig } from './export.js';
export { WgError } from './errors.js';
export type { WgErrorCode } from './errors.js';
