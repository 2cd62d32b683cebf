/**
 * The OIDC relying party: discovery, the authorization request (code flow, PKCE S256, state and
 * nonce), the code exchange, and the id_token check (signature against the issuer's JWKS, issuer,
 * audience, expiry, nonce) with jose; then who may sign in (allowed email domains, users, groups).
 * Keeps no state of its own beyond the cached discovery document: sign-ins in flight are rows in
 * `oidc_logins` (state/identities.ts), so the callback may land on any replica.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createRemoteJWKSet, errors as joseErrors, jwtVerify, type JWTPayload } from 'jose';
import { z } from 'zod';
import { constantTimeEqual } from '@weft/crypto';
import { ApiError, Errors } from '../errors.js';
import type { OidcIdentity } from '../state/index.js';
import { OIDC_CLOCK_TOLERANCE_S, OIDC_DISCOVERY_TTL_MS, OIDC_HTTP_TIMEOUT_MS } from '../tunables.js';

export interface OidcSettings {
  /** The issuer exactly as its id_tokens name it (`iss`); discovery is at `<issuer>/.well-known/openid-configuration`. */
  issuer: string;
  clientId: string;
  /** Absent = a public client (PKCE only). Never logged. */
  clientSecret?: string;
  /** Where the provider sends the browser back: `<serverUrl>/auth/oidc/callback` unless configured. */
  redirectUrl: string;
  scopes: string[];
  /** The claim holding the groups: a plain name (`groups`), a namespaced one (`https://example.com/groups`), or a dotted path (`realm_access.roles`). */
  groupsClaim: string;
  /** Each list, when not empty, must be passed (they combine with AND). Domains and users compare case-insensitively. */
  allowedDomains: string[];
  allowedUsers: string[];
  allowedGroups: string[];
  /** Members of these provider groups are admins. */
  adminGroups: string[];
}

const Discovery = z.object({
  issuer: z.string(),
  authorization_endpoint: z.string().url(),
  token_endpoint: z.string().url(),
  jwks_uri: z.string().url(),
  token_endpoint_auth_methods_supported: z.array(z.string()).optional(),
  code_challenge_methods_supported: z.array(z.string()).optional(),
  id_token_signing_alg_values_supported: z.array(z.string()).optional(),
});
type Discovery = z.infer<typeof Discovery>;

const TokenResponse = z.object({ id_token: z.string().min(1), token_type: z.string().optional() });

const failed = (detail: string, cause?: unknown) => new ApiError(Errors.oidcFailed, detail, cause === undefined ? undefined : { cause });
const unavailable = (detail: string, cause?: unknown) => new ApiError(Errors.unavailable, detail, cause === undefined ? undefined : { cause });

const b64url = (b: Buffer) => b.toString('base64url');
export const randomToken = () => b64url(randomBytes(32));
export const pkceChallenge = (verifier: string) => b64url(createHash('sha256').update(verifier).digest());

export class OidcClient {
  private discovery: { doc: Discovery; at: number; jwks: ReturnType<typeof createRemoteJWKSet> } | null = null;

  constructor(readonly settings: OidcSettings) {}

  private async discover() {
    if (this.discovery && Date.now() - this.discovery.at < OIDC_DISCOVERY_TTL_MS) return this.discovery;
    const url = `${this.settings.issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
    let json: unknown;
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(OIDC_HTTP_TIMEOUT_MS), headers: { accept: 'application/json' } });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      json = await res.json();
    } catch (err) {
      throw unavailable(`cannot read the identity provider's discovery document ${url}: ${(err as Error).message}`, err);
    }
    const parsed = Discovery.safeParse(json);
    if (!parsed.success) throw unavailable(`the discovery document ${url} is not usable: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
    const doc = parsed.data;
    // OpenID Connect Discovery 1.0 §4.3: the document must name the issuer it was fetched for.
    if (doc.issuer !== this.settings.issuer) throw unavailable(`the discovery document names issuer "${doc.issuer}", not the configured "${this.settings.issuer}"`);
    if (doc.code_challenge_methods_supported && !doc.code_challenge_methods_supported.includes('S256')) {
      throw unavailable('the identity provider does not support PKCE with S256 (code_challenge_methods_supported)');
    }
    this.discovery = { doc, at: Date.now(), jwks: createRemoteJWKSet(new URL(doc.jwks_uri), { timeoutDuration: OIDC_HTTP_TIMEOUT_MS }) };
    return this.discovery;
  }

  async authorizationUrl(p: { state: string; nonce: string; codeVerifier: string }): Promise<string> {
    const { doc } = await this.discover();
    const url = new URL(doc.authorization_endpoint);
    const q = url.searchParams;
    q.set('response_type', 'code');
    q.set('client_id', this.settings.clientId);
    q.set('redirect_uri', this.settings.redirectUrl);
    q.set('scope', this.settings.scopes.join(' '));
    q.set('state', p.state);
    q.set('nonce', p.nonce);
    q.set('code_challenge', pkceChallenge(p.codeVerifier));
    q.set('code_challenge_method', 'S256');
    return url.toString();
  }

  /** Exchanges the code (once: providers refuse a second use) and returns the verified id_token claims. */
  async signIn(code: string, codeVerifier: string, nonce: string): Promise<JWTPayload> {
    const { doc, jwks } = await this.discover();
    const body = new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: this.settings.redirectUrl, code_verifier: codeVerifier });
    const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' };
    const secret = this.settings.clientSecret;
    const basic = !doc.token_endpoint_auth_methods_supported || doc.token_endpoint_auth_methods_supported.includes('client_secret_basic');
    if (secret && basic) {
      headers.authorization = `Basic ${Buffer.from(`${encodeURIComponent(this.settings.clientId)}:${encodeURIComponent(secret)}`).toString('base64')}`;
    } else {
      body.set('client_id', this.settings.clientId);
      if (secret) body.set('client_secret', secret);
    }
    let res: Response;
    try {
      res = await fetch(doc.token_endpoint, { method: 'POST', headers, body, signal: AbortSignal.timeout(OIDC_HTTP_TIMEOUT_MS) });
    } catch (err) {
      throw unavailable(`cannot reach the identity provider's token endpoint: ${(err as Error).message}`, err);
    }
    const json = (await res.json().catch(() => null)) as Record<string, unknown> | null;
    if (!res.ok) {
      const what = typeof json?.error === 'string' ? `${json.error.slice(0, 100)}${typeof json.error_description === 'string' ? `: ${json.error_description.slice(0, 200)}` : ''}` : `HTTP ${res.status}`;
      throw failed(`the identity provider refused the authorization code (${what}); a code works only once: sign in again`);
    }
    const tokens = TokenResponse.safeParse(json);
    if (!tokens.success) throw failed('the identity provider answered the code exchange without an id_token');
    return this.verifyIdToken(tokens.data.id_token, nonce, jwks);
  }

  private async verifyIdToken(idToken: string, nonce: string, jwks: ReturnType<typeof createRemoteJWKSet>): Promise<JWTPayload> {
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(idToken, jwks, {
        issuer: this.settings.issuer,
        audience: this.settings.clientId,
        clockTolerance: OIDC_CLOCK_TOLERANCE_S,
        requiredClaims: ['iss', 'sub', 'aud', 'exp', 'iat'],
      }));
    } catch (err) {
      throw failed(`the id_token was refused: ${whyRefused(err, this.settings)}`, err);
    }
    // OpenID Connect Core §3.1.3.7: with several audiences, azp must be us.
    if (Array.isArray(payload.aud) && payload.aud.length > 1 && payload.azp !== this.settings.clientId) throw failed('the id_token was refused: it has several audiences and its azp is not this client');
    if (typeof payload.nonce !== 'string' || !constantTimeEqual(payload.nonce, nonce)) throw failed('the id_token was refused: its nonce is not the one this sign-in sent (a token from another sign-in)');
    return payload;
  }

  /** The identity from verified claims, or 403-worthy reasons why this person may not sign in. */
  identity(claims: JWTPayload): OidcIdentity {
    const s = this.settings;
    const str = (v: unknown) => (typeof v === 'string' && v !== '' ? v : null);
    const email = str(claims.email)?.toLowerCase() ?? null;
    const groups = groupsOf(claims, s.groupsClaim);
    const deny = (why: string) => new ApiError(Errors.forbidden, `${email ?? claims.sub} may not sign in here: ${why}`);
    if (s.allowedDomains.length) {
      if (!email) throw deny('the identity provider sent no email, and sign-in is limited to email domains');
      if (claims.email_verified === false) throw deny(`the email ${email} is not verified at the identity provider`);
      const domain = email.slice(email.lastIndexOf('@') + 1);
      if (!s.allowedDomains.some((d) => d.toLowerCase() === domain)) throw deny(`the email domain ${domain} is not allowed (allowed: ${s.allowedDomains.join(', ')})`);
    }
    if (s.allowedUsers.length && !s.allowedUsers.some((u) => u.toLowerCase() === email || u === claims.sub)) throw deny('the account is not in the allowed users');
    if (s.allowedGroups.length && !groups.some((g) => s.allowedGroups.includes(g))) throw deny(`the account is in none of the allowed groups (claim "${s.groupsClaim}")`);
    return { issuer: s.issuer, subject: claims.sub!, email, displayName: str(claims.name), preferredName: str(claims.preferred_username), groups };
  }
}

/** The groups claim: an exact claim name first (namespaced names hold dots), else a dotted path into nested objects. */
export function groupsOf(claims: Record<string, unknown>, claim: string): string[] {
  let v: unknown = claims[claim];
  if (v === undefined && claim.includes('.')) {
    v = claim.split('.').reduce<unknown>((o, k) => (o && typeof o === 'object' ? (o as Record<string, unknown>)[k] : undefined), claims);
  }
  if (typeof v === 'string') v = [v];
  if (!Array.isArray(v)) return [];
  return [...new Set(v.filter((g): g is string => typeof g === 'string' && g.length > 0 && g.length <= 256))].slice(0, 1000).sort();
}

function whyRefused(err: unknown, s: OidcSettings): string {
  if (err instanceof joseErrors.JWTExpired) return `it expired (exp ${String(err.payload.exp)})`;
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    if (err.claim === 'iss') return `it was issued by "${String(err.payload.iss).slice(0, 200)}", not the configured issuer "${s.issuer}"`;
    if (err.claim === 'aud') return `it is not meant for this client (aud is not "${s.clientId}")`;
    return `its "${err.claim}" claim is not valid (${err.reason})`;
  }
  if (err instanceof joseErrors.JWSSignatureVerificationFailed || err instanceof joseErrors.JWKSNoMatchingKey) return "its signature does not verify with the issuer's published keys (JWKS)";
  if (err instanceof joseErrors.JOSEError) return `${err.code}: ${err.message}`;
  return (err as Error).message;
}
