import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { NetmapMessage, Region } from '@weft/protocol';
import { loadConfig } from '../../src/config.js';
import { Regions } from '../../src/regions.js';

const dir = mkdtempSync(join(tmpdir(), 'weft-regions-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
function configWith(extra: Record<string, unknown>) {
  const file = join(dir, `c${++n}.json`);
  writeFileSync(file, JSON.stringify(extra));
  return () => loadConfig(['--config', file], {});
}

const fra = { id: 2, code: 'fra', name: 'Frankfurt', stun: ['relay-fra.example.com:3478', '192.0.2.7:3478'] };

describe('regions config', () => {
  it('defaults to none beyond the embedded one; a valid list is kept', () => {
    expect(loadConfig([], {}).regions).toEqual([]);
    expect(configWith({ regions: [fra] })().regions).toEqual([fra]);
  });

  it('a bad region names the key, the file, the entry and the field', () => {
    expect(configWith({ regions: [{ ...fra, stun: ['nope'] }] })).toThrow(/"regions" \(config file .*c\d+\.json\): regions\[0\]\.stun\[0\]: must be HOST:PORT/);
    expect(configWith({ regions: [{ ...fra, stun: ['a.example:70000'] }] })).toThrow(/regions\[0\]\.stun\[0\]: port must be 1-65535/);
    expect(configWith({ regions: [{ ...fra, code: 'Fra!' }] })).toThrow(/regions\[0\]\.code: must be 1-32 of a-z/);
    expect(configWith({ regions: [{ ...fra, id: 1 }] })).toThrow(/"regions" \(config file .*\): regions\[0\]\.id: id 1 is the embedded STUN service's region/);
    expect(configWith({ regions: [fra, { ...fra, code: 'fra2' }] })).toThrow(/regions\[1\]\.id: id 2 is used twice/);
    expect(configWith({ regions: [fra, { ...fra, id: 3 }] })).toThrow(/regions\[1\]\.code: code "fra" is used twice/);
    // With the embedded STUN service off, id 1 is free.
    expect(configWith({ regions: [{ ...fra, id: 1 }], stunListen: 'off' })().regions[0]!.id).toBe(1);
  });
});

describe('Regions.jsonFor', () => {
  const parse = (json: string | undefined) => (json === undefined ? undefined : (JSON.parse(json) as Region[]));

  it('advertises the embedded STUN service at the host the agent used, then the configured ones by id', () => {
    const r = new Regions({ embeddedStunPort: 3478, extra: [{ ...fra, id: 5, code: 'b' }, fra] });
    const list = parse(r.jsonFor('weft.example.com'))!;
    expect(list.map((x) => x.id)).toEqual([1, 2, 5]);
    expect(list[0]).toEqual({ id: 1, code: 'embedded', name: 'this server', stun: ['weft.example.com:3478'] });
    expect(parse(r.jsonFor('10.77.0.10'))![0]!.stun).toEqual(['10.77.0.10:3478']);
    expect(parse(r.jsonFor('[2001:db8::1]'))![0]!.stun).toEqual(['[2001:db8::1]:3478']);
    expect(parse(r.jsonFor('2001:db8::1'))![0]!.stun).toEqual(['[2001:db8::1]:3478']);
    // Every list is a valid netmap field.
    expect(NetmapMessage.shape.regions.safeParse(list).success).toBe(true);
  });

  it('a Host header that is no valid STUN host leaves the embedded region out, not the netmap invalid', () => {
    const r = new Regions({ embeddedStunPort: 3478, extra: [fra] });
    expect(parse(r.jsonFor('bad host\u0000'))!.map((x) => x.id)).toEqual([2]);
    expect(parse(r.jsonFor(undefined))!.map((x) => x.id)).toEqual([2]);
  });

  it('STUN off and nothing configured: no regions field at all', () => {
    expect(new Regions({ embeddedStunPort: null, extra: [] }).jsonFor('weft.example.com')).toBeUndefined();
  });
});
