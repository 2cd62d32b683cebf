/**
 * The one protocol version spoken between agent and server. Code branches on this integer,
 * never on a package version string.
 *
 * History:
 * - 1 (2026-11-22): registration, `/agent/v1` WebSocket with full netmap then sequenced deltas.
 *   Later optional fields are dated where they are declared, each ignored by a side that predates
 *   it; among them netmap revisions and `resume` (2026-12-02, sent only to an agent that asks),
 *   and the compact resume with per view class revisions (2026-12-02, only to an agent that
 *   sends NETMAP_ENDPOINTS_HEADER).
 */
export const PROTOCOL_VERSION = 1;

/** Oldest agent protocol version the server still serves. */
export const MIN_PROTOCOL_VERSION = 1;
