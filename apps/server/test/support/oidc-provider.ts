/**
 * A small OIDC provider inside the test process: discovery, JWKS, authorize (signs the next
 * configured user in at once, no login form) and token (authorization code with PKCE S256, each
 * code usable once). Keys and tokens are made with jose. `misbehave` makes the next id_tokens wrong
 * in one chosen way, so tests can check the relying party refuses each.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { exportJWK, generateKeyPair, SignJWT, type JWK, type JWTPayload, type CryptoKey } from 'jose';

export interface Misbehaviour {
  /** Put this `iss` in the id_token. */
  issuer?: string;
  /** Sign with a key that is not in the JWKS. */
  foreignKey?: boolean;
  /** Seconds from now to `exp` (negative = already expired). */
  expiresInS?: number;
  /** Put this nonce in the id_token instead of the one from the authorization request. */
  nonce?: string;
  /** Put this audience in the id_token. */
  audience?: string;
}

interface Grant { claims: JWTPayload; nonce: string; redirectUri: string; challenge: string; used: boolean }

export class TestOidcProvider {
  readonly clientId = 'weft-test-client';
  readonly clientSecret = randomBytes(16).toString('hex');
  /** Claims of whoever signs in next at /authorize. */
  user: JWTPayload = { sub: 'user-1', email: 'ada@example.com', email_verified: true, name: 'Ada', preferred_username: 'ada' };
  misbehave: Misbehaviour = {};
  readonly grants = new Map<string, Grant>();
  /** Token requests refused, with the OAuth error they got. */
  readonly refusals: string[] = [];
  private constructor(private readonly server: Server, readonly issuer: string, private readonly key: CryptoKey, private readonly foreign: CryptoKey, private readonly jwk: JWK) {}

  static async start(): Promise<TestOidcProvider> {
    const { privateKey, publicKey } = await generateKeyPair('RS256');
    const foreign = (await generateKeyPair('RS256')).privateKey;
    const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
    const server = createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const addr = server.address();
    const issuer = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
    const p = new TestOidcProvider(server, issuer, privateKey, foreign, jwk);
    server.on('request', (req, res) => {
      p.handle(req).then(
        ({ status, headers, body }) => {
          res.writeHead(status, headers);
          res.end(body);
        },
        (err: Error) => {
          res.writeHead(500);
          res.end(err.message);
        },
      );
    });
    return p;
  }

  private async handle(req: IncomingMessage): Promise<{ status: number; headers: Record<string, string>; body?: string }> {
    const url = new URL(req.url ?? '/', this.issuer);
    const json = (status: number, v: unknown) => ({ status, headers: { 'content-type': 'application/json' }, body: JSON.stringify(v) });
    if (url.pathname === '/.well-known/openid-configuration') {
      return json(200, {
        issuer: this.issuer,
        authorization_endpoint: `${this.issuer}/authorize`,
        token_endpoint: `${this.issuer}/token`,
        jwks_uri: `${this.issuer}/jwks`,
        response_types_supported: ['code'],
        subject_types_supported: ['public'],
        id_token_signing_alg_values_supported: ['RS256'],
        code_challenge_methods_supported: ['S256'],
        token_endpoint_auth_methods_supported: ['client_secret_basic'],
      });
    }
    if (url.pathname === '/jwks') return json(200, { keys: [this.jwk] });
    if (url.pathname === '/authorize') {
      const q = url.searchParams;
      if (q.get('client_id') !== this.clientId || q.get('response_type') !== 'code' || q.get('code_challenge_method') !== 'S256' || !q.get('code_challenge') || !q.get('nonce') || !q.get('state')) {
        return json(400, { error: 'invalid_request', got: Object.fromEntries(q) });
      }
      const code = randomBytes(16).toString('hex');
      this.grants.set(code, { claims: { ...this.user }, nonce: q.get('nonce')!, redirectUri: q.get('redirect_uri')!, challenge: q.get('code_challenge')!, used: false });
      const back = new URL(q.get('redirect_uri')!);
      back.searchParams.set('code', code);
      back.searchParams.set('state', q.get('state')!);
      return { status: 302, headers: { location: back.toString() } };
    }
    if (url.pathname === '/token' && req.method === 'POST') {
      let raw = '';
      for await (const c of req) raw += c;
      const form = new URLSearchParams(raw);
      const refuse = (error: string) => {
        this.refusals.push(error);
        return json(400, { error });
      };
      if (req.headers.authorization !== `Basic ${Buffer.from(`${this.clientId}:${this.clientSecret}`).toString('base64')}`) return refuse('invalid_client');
      const grant = this.grants.get(form.get('code') ?? '');
      if (form.get('grant_type') !== 'authorization_code' || !grant) return refuse('invalid_grant');
      // RFC 6749 §4.1.2: a code is used once; a second use is refused.
      if (grant.used) return refuse('invalid_grant');
      grant.used = true;
      if (form.get('redirect_uri') !== grant.redirectUri) return refuse('invalid_grant');
      const challenge = createHash('sha256').update(form.get('code_verifier') ?? '').digest('base64url');
      if (challenge !== grant.challenge) return refuse('invalid_grant');
      const m = this.misbehave;
      const now = Math.floor(Date.now() / 1000);
      const exp = now + (m.expiresInS ?? 300);
      const idToken = await new SignJWT({ ...grant.claims, nonce: m.nonce ?? grant.nonce })
        .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
        .setIssuer(m.issuer ?? this.issuer)
        .setAudience(m.audience ?? this.clientId)
        .setIssuedAt(Math.min(now, exp - 60))
        .setExpirationTime(exp)
        .sign(m.foreignKey ? this.foreign : this.key);
      return json(200, { access_token: randomBytes(16).toString('hex'), token_type: 'Bearer', expires_in: 300, id_token: idToken });
    }
    return json(404, { error: 'not_found' });
  }

  close(): Promise<void> {
    return new Promise((r) => this.server.close(() => r()));
  }
}
