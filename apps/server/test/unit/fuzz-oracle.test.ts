import { describe, expect, it } from 'vitest';
import { Rng } from '../fuzz/prng.js';
import { isValidEndpoint, lookalike, validValue } from '../fuzz/values.js';

describe('fuzz tier oracle and generators', () => {
  it('the endpoint oracle takes ip:port with octets 0-255 and ports 1-65535, and nothing else', () => {
    for (const ok of ['1.2.3.4:51820', '0.0.0.0:1', '255.255.255.255:65535', '[::1]:1', '[fd7a:115c:a1e0::1]:41641', '[::ffff:192.0.2.1]:443']) expect(isValidEndpoint(ok), ok).toBe(true);
    for (const bad of ['999.999.999.999:99999', '256.0.0.1:1', '1.2.3.4:0', '1.2.3.4:65536', '1.2.3.4:080', '01.2.3.4:80', '1.2.3:4', '[::1]:0', '[1.2.3.4]:5', '[fe80::1%eth0]:1', '::1:80', '1.2.3.4', 'localhost:80']) {
      expect(isValidEndpoint(bad), bad).toBe(false);
    }
  });

  it('a lookalike of a valid endpoint is never valid', () => {
    const rng = new Rng(1);
    for (let i = 0; i < 500; i++) {
      const l = lookalike(rng, rng.chance(0.5) ? `${rng.int(0, 255)}.${rng.int(0, 255)}.${rng.int(0, 255)}.${rng.int(0, 255)}:${rng.int(1, 65535)}` : `[fd00::${rng.hex(4)}]:${rng.int(1, 65535)}`);
      expect(l !== null && isValidEndpoint(l), String(l)).toBe(false);
    }
  });

  it('the same seed gives the same inputs', () => {
    const schema = { type: 'object', properties: { user: { type: 'string', pattern: '^[a-z0-9][a-z0-9._@-]{0,63}$' }, tags: { type: 'array', items: { type: 'string', pattern: '^tag:[a-z0-9][a-z0-9-]{0,62}$' } } }, required: ['user'] };
    const run = (seed: number) => Array.from({ length: 20 }, ((rng) => () => JSON.stringify(validValue(rng, schema, new Map())))(new Rng(seed)));
    expect(run(7)).toEqual(run(7));
    expect(run(7)).not.toEqual(run(8));
  });
});
