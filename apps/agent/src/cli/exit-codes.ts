/**
 * Every exit code `weft` uses, in one place. Scripts (and the e2e lab) branch on these numbers;
 * they never change meaning. Error codes coming from the daemon's local API (and from the control
 * server's problem+json `code`) map onto them in `exitCodeFor`.
 */
import type { State } from '../status.js';

export const ExitCode = {
  Ok: 0,
  /** Anything without a more specific code. */
  Generic: 1,
  /** Unknown command or flag, missing or malformed argument. */
  Usage: 2,
  /** `weft daemon` not run as root, or the CLI may not open the root-only control socket. */
  NotRoot: 3,
  /** No daemon answers on the control socket. */
  DaemonNotRunning: 4,
  /** The control server could not be reached (network error, 5xx, timeout). */
  ServerUnreachable: 5,
  AuthKeyInvalid: 6,
  AuthKeyExpired: 7,
  AuthKeyUsed: 8,
  AuthKeyRevoked: 9,
  /** An admin deleted this node (or the server no longer knows its machine key). */
  NodeRevoked: 10,
  /** The node's key expired: log in again. */
  NodeExpired: 11,
  /** The interactive login was not approved before it expired. */
  LoginExpired: 12,
  /** The command needs a node that has joined (`weft up --server URL` first); also `weft status` while waiting for login. */
  NotLoggedIn: 13,
  /** `weft status`: the node is down (`weft down`); `weft up` brings it back. */
  Stopped: 14,
  /** `weft status`: still joining or bringing the interface up; ask again shortly. */
  Starting: 15,
  /** The node's user is suspended: an admin lifts it with `weft-server users resume NAME`. */
  UserSuspended: 16,
  /** `weft netcheck`: no STUN server answered over UDP (the report is printed all the same). */
  UdpBlocked: 17,
  /** `weft netcheck`: the netmap lists no STUN server to check against (server has STUN off, or no netmap yet). */
  NoRegions: 18,
  /**
   * The control server's TLS certificate was refused: not signed by a trusted CA (pass it with
   * --ca-file), expired, not yet valid, or not issued for the server's name. The message says which.
   */
  ServerCertificate: 19,
  /** `weft doctor`: at least one check FAILed (the report says what to do). */
  DoctorFailed: 20,
  /** `weft ping`: no peer by that name, tunnel address or node key. */
  NoSuchPeer: 21,
  /** `weft ping`: the peer never answered. */
  NoReply: 22,
  /** Interrupted (Ctrl-C). */
  Interrupted: 130,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/**
 * Stable error codes the daemon reports over the local API. The first group are the control
 * server's RegisterErrorCode values passed through unchanged.
 */
export const AgentErrorCode = {
  AuthKeyInvalid: 'auth_key_invalid',
  AuthKeyExpired: 'auth_key_expired',
  AuthKeyUsed: 'auth_key_used',
  AuthKeyRevoked: 'auth_key_revoked',
  LoginExpired: 'login_expired',
  NodeRevoked: 'node_revoked',
  NodeExpired: 'node_expired',
  UserSuspended: 'user_suspended',
  ServerUnreachable: 'server_unreachable',
  ServerError: 'server_error',
  ServerCertificate: 'server_certificate',
  NotLoggedIn: 'not_logged_in',
  AlreadyRegistered: 'already_registered',
  BadRequest: 'bad_request',
  DeviceError: 'device_error',
  /** The packet filter could not be put in force (nft missing or its transaction failed). */
  FirewallError: 'firewall_error',
  Internal: 'internal',
  NoRegions: 'no_regions',
} as const;
export type AgentErrorCode = (typeof AgentErrorCode)[keyof typeof AgentErrorCode];

const byCode: Record<string, ExitCode> = {
  auth_key_invalid: ExitCode.AuthKeyInvalid,
  auth_key_expired: ExitCode.AuthKeyExpired,
  auth_key_used: ExitCode.AuthKeyUsed,
  auth_key_revoked: ExitCode.AuthKeyRevoked,
  login_expired: ExitCode.LoginExpired,
  node_revoked: ExitCode.NodeRevoked,
  node_deleted: ExitCode.NodeRevoked,
  node_expired: ExitCode.NodeExpired,
  user_suspended: ExitCode.UserSuspended,
  server_unreachable: ExitCode.ServerUnreachable,
  server_error: ExitCode.ServerUnreachable,
  server_certificate: ExitCode.ServerCertificate,
  // The server's own 503s (retryable): the server is there but cannot answer now.
  database_busy: ExitCode.ServerUnreachable,
  unavailable: ExitCode.ServerUnreachable,
  not_logged_in: ExitCode.NotLoggedIn,
  already_registered: ExitCode.Usage,
  bad_request: ExitCode.Usage,
  no_regions: ExitCode.NoRegions,
};

/**
 * `weft status` exits 0 only while the node is running, as `tailscale status` does, so a script
 * or health check can branch on it without parsing. A running node whose control connection is
 * down is still 0: its tunnels work on the last netmap (`online` in --json says which).
 */
const byState: Record<State, ExitCode> = {
  running: ExitCode.Ok,
  starting: ExitCode.Starting,
  'needs-login': ExitCode.NotLoggedIn,
  stopped: ExitCode.Stopped,
  revoked: ExitCode.NodeRevoked,
  expired: ExitCode.NodeExpired,
};

export function statusExitCode(state: State): ExitCode {
  return byState[state];
}

export function exitCodeFor(code: string): ExitCode {
  return byCode[code] ?? ExitCode.Generic;
}

/** What to tell a person next, per error code; appended to the daemon's message. */
const hints: Record<string, string> = {
  auth_key_invalid: 'Check the key, or create one with: weft-server authkeys create --user NAME',
  auth_key_expired: 'Create a new key with: weft-server authkeys create --user NAME',
  auth_key_used: 'That key was single-use. Create a new one, or a reusable one with --reusable',
  auth_key_revoked: 'Create a new key with: weft-server authkeys create --user NAME',
  login_expired: 'Run weft up (or weft login) again and approve within the time shown',
  node_revoked: 'An admin removed this node. To join again as a new node: weft logout && weft up --server URL',
  node_deleted: 'An admin removed this node. To join again as a new node: weft logout && weft up --server URL',
  node_expired: 'Log in again: weft login (or weft up --auth-key KEY)',
  user_suspended: 'Your user is suspended. An admin can resume it with: weft-server users resume NAME',
  server_unreachable: 'Check the --server URL and that weft-server is running and reachable from here',
  database_busy: 'The server could not write in time (its database was busy); nothing changed. Run the same command again',
  not_logged_in: 'Join first: weft up --server URL [--auth-key KEY]',
  no_regions: 'The control server lists no STUN server: ask an admin to turn STUN on (weft-server --stun-listen) or configure regions, and check that this node is connected (weft status)',
};

export function hintFor(code: string): string | undefined {
  return hints[code];
}

/** An error the CLI turns into a message on stderr and an exit code. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCode,
    readonly hint?: string,
  ) {
    super(message);
  }
}
