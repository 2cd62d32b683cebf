/** The wg error catalogue: a stable code, whether retrying can help, a message safe to show. */
export type WgErrorCode =
  /** The UAPI socket is missing or refused the connection (wireguard-go not running yet). */
  | 'uapi_unavailable'
  /** wireguard-go answered with a non-zero errno (bad key, bad CIDR, port in use...). */
  | 'uapi_errno'
  /** The UAPI reply could not be parsed or did not arrive in time. */
  | 'uapi_protocol'
  /** An `ip` or `wg` command exited non-zero. */
  | 'command_failed'
  /** A required binary (wireguard-go, wg, ip) is not installed. */
  | 'binary_missing'
  /** wireguard-go exited before its UAPI socket came up. */
  | 'userspace_start_failed'
  /** An interface or a live UAPI socket with this name already exists. */
  | 'interface_exists'
  /** Kernel WireGuard was asked for but this host cannot create `type wireguard` links. */
  | 'kernel_unavailable'
  /** The device was closed. */
  | 'closed';

const RETRYABLE: ReadonlySet<WgErrorCode> = new Set(['uapi_unavailable', 'uapi_protocol', 'userspace_start_failed']);

export class WgError extends Error {
  override readonly name = 'WgError';
  readonly retryable: boolean;
  constructor(
    readonly code: WgErrorCode,
    message: string,
    opts: { cause?: unknown; fields?: Record<string, unknown> } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.retryable = RETRYABLE.has(code);
    this.fields = opts.fields ?? {};
  }
  readonly fields: Record<string, unknown>;
}
