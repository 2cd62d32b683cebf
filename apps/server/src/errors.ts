/**
 * The server's error catalogue: each error a stable code, an HTTP status, a retryable flag and a
 * message safe to show. Handlers throw `ApiError`; the error handler turns it into RFC 7807
 * problem+json. The internal error, if any, is kept as `cause` and logged, never sent.
 */
export interface ErrorDef {
  code: string;
  status: number;
  title: string;
  retryable: boolean;
}

const def = (code: string, status: number, title: string, retryable = false): ErrorDef => ({ code, status, title, retryable });

export const Errors = {
  invalidRequest: def('invalid_request', 400, 'The request is invalid'),
  malformedJson: def('malformed_json', 400, 'The request body is not valid JSON'),
  unauthenticated: def('unauthenticated', 401, 'Authentication required'),
  forbidden: def('forbidden', 403, 'Not allowed'),
  notFound: def('not_found', 404, 'No such resource'),
  methodNotAllowed: def('method_not_allowed', 405, 'Method not allowed'),
  requestTimeout: def('request_timeout', 408, 'The request took too long to arrive', true),
  bodyTooLarge: def('body_too_large', 413, 'Request body too large'),
  headersTooLarge: def('headers_too_large', 431, 'Request headers too large'),
  unsupportedMediaType: def('unsupported_media_type', 415, 'Unsupported media type'),
  userExists: def('user_exists', 409, 'A user with that name already exists'),
  userNotFound: def('user_not_found', 404, 'No such user'),
  /** The user is suspended: their devices are refused (at the agent door too) until an admin resumes them. */
  userSuspended: def('user_suspended', 403, 'The user is suspended'),
  /** The user was offboarded: final; nothing more can be done for them. */
  userOffboarded: def('user_offboarded', 409, 'The user was offboarded'),
  nodeNotFound: def('node_not_found', 404, 'No such node'),
  nameTaken: def('name_taken', 409, 'That node name is taken'),
  authKeyNotFound: def('auth_key_not_found', 404, 'No such auth key'),
  apiKeyNotFound: def('api_key_not_found', 404, 'No such API key'),
  loginNotFound: def('login_not_found', 404, 'No such pending login'),
  authKeyInvalid: def('auth_key_invalid', 401, 'Auth key is not valid'),
  authKeyExpired: def('auth_key_expired', 401, 'Auth key has expired'),
  authKeyUsed: def('auth_key_used', 401, 'Single-use auth key was already used'),
  authKeyRevoked: def('auth_key_revoked', 401, 'Auth key was revoked'),
  machineUnauthorized: def('machine_unauthorized', 401, 'Machine key proof missing or invalid'),
  loginExpired: def('login_expired', 410, 'The login expired; run `weft up` again'),
  nodeExpired: def('node_expired', 410, "The node's key expired; run `weft up` again"),
  /** The tailnet requires an admin to approve new devices and this one is not approved yet: refused at the agent door (403). */
  nodePendingApproval: def('node_pending_approval', 403, 'The device waits for an admin to approve it'),
  /** Approving a node that is not waiting for approval. */
  nodeNotPending: def('node_not_pending', 409, 'The node is not waiting for approval'),
  addressesExhausted: def('addresses_exhausted', 507, 'No free tunnel addresses left'),
  /** A policy (PUT, rollback) that does not parse, names what does not exist, or fails its own `tests`; `errors` has each line and column. Nothing was written. */
  policyInvalid: def('policy_invalid', 422, 'The policy was rejected'),
  /** If-Match names a policy version that is no longer the active one: fetch it again and redo the edit. */
  policyVersionConflict: def('policy_version_conflict', 412, 'The policy changed since that version'),
  /** A policy write without If-Match: the version it was edited from is required, so no edit is lost. */
  preconditionRequired: def('precondition_required', 428, 'If-Match is required'),
  policyVersionNotFound: def('policy_version_not_found', 404, 'No such policy version'),
  /** A node tag the stored policy does not define in tagOwners (or no policy is stored): define it there first. Nothing was written. */
  tagUnknown: def('tag_unknown', 422, 'The tag is not defined in the policy'),
  /** The signed-in user is not among the tag's owners in the policy's tagOwners. Nothing was written. */
  tagNotOwned: def('tag_not_owned', 403, 'Not an owner of the tag'),
  /** A state-changing request made with a session cookie lacked the CSRF token or came from another site. */
  csrfFailed: def('csrf_failed', 403, 'Cross-site request refused'),
  /** Wrong user name or password (which one is not said). */
  signInFailed: def('sign_in_failed', 401, 'Sign-in failed'),
  /** The OIDC sign-in was refused: the provider's answer did not verify, or the account is not allowed. */
  oidcFailed: def('oidc_failed', 401, 'Sign-in with the identity provider failed'),
  oidcNotConfigured: def('oidc_not_configured', 404, 'No identity provider is configured'),
  rateLimited: def('rate_limited', 429, 'Too many requests', true),
  unavailable: def('unavailable', 503, 'Temporarily unavailable', true),
  /**
   * The write waited too long for a lock another transaction holds (a replica stalled inside a
   * transaction, see @weft/db tunables.ts), or its database session was ended under it; nothing
   * was written. Retrying is safe and usually works at once.
   */
  databaseBusy: def('database_busy', 503, 'The database is busy; try again', true),
  /** Not retryable: an unexpected error is most often deterministic, and a client retrying it forever is a load generator. */
  internal: def('internal', 500, 'Internal server error'),
} as const satisfies Record<string, ErrorDef>;

export class ApiError extends Error {
  constructor(
    readonly def: ErrorDef,
    readonly detail?: string,
    options?: { cause?: unknown; errors?: ProblemField[]; headers?: Record<string, string> },
  ) {
    super(detail ?? def.title, options?.cause === undefined ? undefined : { cause: options.cause });
    this.errors = options?.errors;
    this.headers = options?.headers;
  }
  readonly errors: ProblemField[] | undefined;
  /** Response headers that go with the problem, e.g. `Retry-After` on 429. */
  readonly headers: Record<string, string> | undefined;
}

/** One thing wrong with the request: the field, and for text such as a policy, the line and column in it. */
export interface ProblemField { path: string; message: string; line?: number; col?: number }

export function problemBody(def: ErrorDef, detail?: string, errors?: ProblemField[]) {
  return {
    type: `https://weft.dev/problems/${def.code}`,
    title: def.title,
    status: def.status,
    code: def.code,
    ...(detail ? { detail } : {}),
    retryable: def.retryable,
    ...(errors ? { errors } : {}),
  };
}
