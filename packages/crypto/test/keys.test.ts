import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  constantTimeEqual, fromWireGuardBase64, generateMachineKey, generateNodeKey, generateSecret,
  hashSecret, nodeKeyFingerprint, parseNodePublicKey, secretPrefix, toWireGuardBase64,
} from '../src/index.js';

describe('node keys', () => {
  it('derives the same public key as `wg pubkey`', () => {
    if (!existsSync('/usr/bin/wg')) throw new Error('wireguard-tools missing: apt-get install wireguard-tools');
    const { privateKey, publicKey } = generateNodeKey();
    const wgPub = execFileSync('wg', ['pubkey'], { input: toWireGuardBase64(privateKey) + '\n' }).toString().trim();
    expect(wgPub).toBe(toWireGuardBase64(publicKey));
    expect(fromWireGuardBase64(wgPub)).toBe(publicKey);
  });

  it('rejects keys of the wrong role or shape', () => {
    const { publicKey } = generateMachineKey();
    expect(() => parseNodePublicKey(publicKey)).toThrow(/nodekey:/);
    expect(() => parseNodePublicKey('nodekey:XYZ')).toThrow();
  });
});

describe('secrets', () => {
  it('are shown once with a visible prefix and stored as a hash', () => {
    const s = generateSecret('auth');
    expect(s.key.startsWith(s.prefix + '-')).toBe(true);
    expect(s.hash).toBe(hashSecret(s.key));
    expect(s.hash).not.toContain(s.key);
    expect(secretPrefix('auth', s.key)).toBe(s.prefix);
    expect(secretPrefix('api', s.key)).toBeNull();
    expect(secretPrefix('auth', s.key + 'x')).toBeNull();
  });

  it('compares in constant time and by value', () => {
    expect(constantTimeEqual('abc', 'abc')).toBe(true);
    expect(constantTimeEqual('abc', 'abd')).toBe(false);
    expect(constantTimeEqual('abc', 'abcd')).toBe(false);
  });
});

describe('machine tokens', () => {
  it('prove possession of the machine key', async () => {
    const { signMachineToken, verifyMachineToken } = await import('../src/index.js');
    const m = generateMachineKey();
    const token = await signMachineToken(m.privateKey);
    const v = await verifyMachineToken(token);
    expect(v.machineKey).toBe(m.publicKey);
    // A token whose sub names another key does not verify.
    const other = generateMachineKey();
    const [h, p, s] = token.split('.');
    const payload = JSON.parse(Buffer.from(p!, 'base64url').toString());
    payload.sub = other.publicKey;
    const forged = [h, Buffer.from(JSON.stringify(payload)).toString('base64url'), s].join('.');
    await expect(verifyMachineToken(forged)).rejects.toThrow(/signature does not verify/);
    await expect(verifyMachineToken('garbage')).rejects.toThrow(/not a JWT/);
  });
});

describe('node key fingerprint', () => {
  it('is the first 16 hex of SHA-256 of the raw key bytes, in groups of four', () => {
    // SHA-256 of 32 zero bytes is 66687aadf862bd776c8fc18b8e9f8e20...
    const zero = parseNodePublicKey(`nodekey:${'00'.repeat(32)}`);
    expect(nodeKeyFingerprint(zero)).toBe('6668-7aad-f862-bd77');
    const a = generateNodeKey().publicKey;
    expect(nodeKeyFingerprint(a)).toMatch(/^[0-9a-f]{4}(-[0-9a-f]{4}){3}$/);
    expect(nodeKeyFingerprint(a)).toBe(nodeKeyFingerprint(parseNodePublicKey(a)));
    expect(nodeKeyFingerprint(generateNodeKey().publicKey)).not.toBe(nodeKeyFingerprint(a));
  });
});
