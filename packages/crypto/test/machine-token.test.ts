import { CompactSign, SignJWT, importJWK } from 'jose';
import { describe, expect, it } from 'vitest';
import { MACHINE_TOKEN_AUDIENCE, MACHINE_TOKEN_CLOCK_SKEW_S, MACHINE_TOKEN_MAX_AGE_S } from '@weft/protocol';
import { generateMachineKey, machinePrivateJwk, verifyMachineToken } from '../src/index.js';

const NOW = 1_800_000_000;
const TEN_YEARS = 10 * 365 * 86400;
const m = generateMachineKey();

/** Signs a token with exactly these claims (the real signer always sets iat = now). */
async function token(claims: Record<string, unknown>): Promise<string> {
  const key = await importJWK(machinePrivateJwk(m.privateKey), 'EdDSA');
  return new SignJWT({ sub: m.publicKey, aud: MACHINE_TOKEN_AUDIENCE, pv: 1, ...claims }).setProtectedHeader({ alg: 'EdDSA', typ: 'JWT' }).sign(key);
}

async function reason(claims: Record<string, unknown>): Promise<string> {
  try {
    await verifyMachineToken(await token(claims), NOW);
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error('token was accepted');
}

describe('machine token lifetime against the server clock', () => {
  it('accepts a fresh token and one within the stated clock skew', async () => {
    await expect(verifyMachineToken(await token({ iat: NOW, exp: NOW + 60 }), NOW)).resolves.toMatchObject({ machineKey: m.publicKey, protocolVersion: 1 });
    const ahead = NOW + MACHINE_TOKEN_CLOCK_SKEW_S;
    await expect(verifyMachineToken(await token({ iat: ahead, exp: ahead + 60 }), NOW)).resolves.toBeDefined();
    const behind = NOW - MACHINE_TOKEN_CLOCK_SKEW_S;
    await expect(verifyMachineToken(await token({ iat: behind - 60, exp: behind }), NOW)).resolves.toBeDefined();
  });

  it('refuses a token issued in the future beyond the skew (iat = exp = now + 10 years)', async () => {
    expect(await reason({ iat: NOW + TEN_YEARS, exp: NOW + TEN_YEARS })).toMatch(/issued \d+ s in the future .*clock/);
    expect(await reason({ iat: NOW + MACHINE_TOKEN_CLOCK_SKEW_S + 1, exp: NOW + MACHINE_TOKEN_CLOCK_SKEW_S + 61 })).toMatch(/in the future/);
  });

  it('refuses a token that expires before it was issued', async () => {
    expect(await reason({ iat: NOW, exp: NOW - 1 })).toMatch(/expires \(exp\) before it was issued/);
  });

  it('refuses a token that lives longer than the max age', async () => {
    expect(await reason({ iat: NOW, exp: NOW + MACHINE_TOKEN_MAX_AGE_S + 1 })).toMatch(/lives 121 s; at most 120 s/);
  });

  it('refuses an expired token beyond the skew', async () => {
    const exp = NOW - MACHINE_TOKEN_CLOCK_SKEW_S - 1;
    expect(await reason({ iat: exp - 60, exp })).toMatch(new RegExp(`expired ${MACHINE_TOKEN_CLOCK_SKEW_S + 1} s ago`));
  });

  it('refuses nbf outside [iat, exp] or in the future beyond the skew', async () => {
    expect(await reason({ iat: NOW, exp: NOW + 60, nbf: NOW - 1 })).toMatch(/"nbf" must lie between/);
    expect(await reason({ iat: NOW, exp: NOW + 60, nbf: NOW + 61 })).toMatch(/"nbf" must lie between/);
    const iat = NOW + MACHINE_TOKEN_CLOCK_SKEW_S - 10;
    expect(await reason({ iat, exp: iat + 60, nbf: iat + 15 })).toMatch(new RegExp(`not valid for another ${MACHINE_TOKEN_CLOCK_SKEW_S + 5} s`));
    await expect(verifyMachineToken(await token({ iat: NOW, exp: NOW + 60, nbf: NOW }), NOW)).resolves.toBeDefined();
  });

  it('names a missing or malformed claim in one line, not a schema dump', async () => {
    const missing = await reason({ exp: NOW + 60 });
    expect(missing).toMatch(/claim "iat" is missing or malformed/);
    expect(missing).not.toContain('\n');
    const wrongType = await reason({ iat: NOW, exp: NOW + 60, pv: 'one' });
    expect(wrongType).toMatch(/claim "pv"/);
    expect(wrongType).not.toContain('\n');
    expect(await reason({ iat: NOW, exp: NOW + 60, aud: 'elsewhere' })).toMatch(/audience must be "weft-control"/);
  });
});

describe('machine token signature and header', () => {
  const other = generateMachineKey();
  const fresh = () => token({ iat: NOW, exp: NOW + 60 });
  /** A token's three parts, and back. */
  const split = (t: string) => t.split('.') as [string, string, string];
  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const refusal = async (t: string) => verifyMachineToken(t, NOW).then(() => 'accepted', (err: Error) => err.message);
  const SIGNATURE = /signature does not verify with the key in "sub"/;

  it('accepts the untouched token', async () => {
    await expect(verifyMachineToken(await fresh(), NOW)).resolves.toMatchObject({ machineKey: m.publicKey });
  });

  it('refuses a signature with one bit flipped, cut short, or not base64url', async () => {
    const [h, p, s] = split(await fresh());
    const sig = Buffer.from(s, 'base64url');
    sig[10]! ^= 1;
    expect(await refusal(`${h}.${p}.${sig.toString('base64url')}`)).toMatch(SIGNATURE);
    expect(await refusal(`${h}.${p}.${s.slice(0, -4)}`)).toMatch(SIGNATURE);
    expect(await refusal(`${h}.${p}.${s.slice(0, -1)}*`)).toMatch(SIGNATURE);
    expect(await refusal(`${h}.${p}.`)).toMatch(SIGNATURE);
  });

  it('refuses claims changed after signing, and a token signed by another key than "sub"', async () => {
    const [h, p, s] = split(await fresh());
    const claims = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>;
    expect(await refusal(`${h}.${b64({ ...claims, exp: NOW + 61 })}.${s}`)).toMatch(SIGNATURE);
    expect(await refusal(`${h}.${b64({ ...claims, sub: other.publicKey })}.${s}`)).toMatch(SIGNATURE);
  });

  it('refuses a header that is not EdDSA, names a critical extension, or is not a JSON object', async () => {
    const key = await importJWK(machinePrivateJwk(m.privateKey), 'EdDSA');
    const [h, p, s] = split(await fresh());
    // Correctly signed, but with a critical extension this server does not implement.
    const critical = await new CompactSign(Buffer.from(p, 'base64url')).setProtectedHeader({ alg: 'EdDSA', b64: true, crit: ['b64'] }).sign(key);
    expect(await refusal(critical)).toMatch(SIGNATURE);
    expect(await refusal(`${b64({ alg: 'none' })}.${p}.${s}`)).toMatch(SIGNATURE);
    expect(await refusal(`${b64(['EdDSA'])}.${p}.${s}`)).toMatch(SIGNATURE);
    expect(await refusal(`${h.slice(1)}.${p}.${s}`)).toMatch(SIGNATURE);
  });

  it('refuses a payload whose "sub" is not a machine key', async () => {
    const [h, , s] = split(await fresh());
    expect(await refusal(`${h}.${b64({ sub: 'nodekey:00' })}.${s}`)).toMatch(/no valid machine key in "sub"/);
    expect(await refusal(`${h}.not-json.${s}`)).toMatch(/no valid machine key in "sub"/);
  });
});
