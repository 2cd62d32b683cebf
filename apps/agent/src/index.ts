/**
 * @weft/agent — `weft`, the node agent: a CLI plus a daemon. The daemon holds the control
 * connection (control-session.ts), applies netmaps and deltas (netmap.ts) to WireGuard through
 * @weft/wg (engine.ts) and the netmap's packet filter to nftables (firewall/), persists keys and
 * the last netmap (state-store.ts), serves the CLI on a root-only unix socket (local-api.ts), and
 * runs `weft netcheck` (netcheck.ts). The CLI lives in cli/; exit codes in cli/exit-codes.ts.
 * Must not import @weft/db or apps/server; wire types come from @weft/protocol only.
 */
export { Agent } from './agent.js';
export type { AgentOptions, LogoutResult, UpEvent, UpRequest } from './agent.js';
export { Engine, interfaceAddresses, peerConfig } from './engine.js';
export { Netmap } from './netmap.js';
export type { NetmapChange } from './netmap.js';
export { StateStore } from './state-store.js';
export type { Phase, PersistedState } from './state-store.js';
export type { Status, PeerStatus, Path, State } from './status.js';
export type { NetcheckReport } from './netcheck.js';
export { preferRegion, verdict, type RegionLatency, type TargetResult } from './netcheck-verdict.js';
export { ExitCode, AgentErrorCode, exitCodeFor, statusExitCode } from './cli/exit-codes.js';
export { DEFAULT_SOCKET, DEFAULT_STATE_DIR, resolveSocket } from './paths.js';
