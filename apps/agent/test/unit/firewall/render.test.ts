/**
 * The nftables renderer against golden files (docs/style.md 4): golden/NAME.json (filter and
 * interface) -> golden/NAME.nft (the exact script) and NAME.skipped.json (rules left out).
 * After an intended change: WEFT_GOLDEN_WRITE=1 npx vitest run --project unit apps/agent/test/unit/firewall
 * and review the diff like code.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { checkFilter, type WireFilter } from '../../../src/firewall/filter.js';
import { checkInterfaceName, renderRemoval, renderRuleset } from '../../../src/firewall/render.js';

const dir = fileURLToPath(new URL('./golden', import.meta.url));
const write = process.env.WEFT_GOLDEN_WRITE === '1';
const cases = readdirSync(dir).filter((f) => f.endsWith('.json') && !f.endsWith('.skipped.json')).map((f) => f.slice(0, -5));

describe('nftables ruleset (golden files)', () => {
  it('has cases', () => {
    expect(cases.length).toBeGreaterThanOrEqual(4);
  });

  for (const name of cases) {
    it(name, () => {
      const input = JSON.parse(readFileSync(join(dir, `${name}.json`), 'utf8')) as { interface: string; filter: WireFilter };
      const checked = checkFilter(input.filter);
      const script = renderRuleset(checked, input.interface);
      const skipped = `${JSON.stringify(checked.skipped, null, 2)}\n`;
      const scriptPath = join(dir, `${name}.nft`);
      const skippedPath = join(dir, `${name}.skipped.json`);
      if (write || !existsSync(scriptPath)) {
        writeFileSync(scriptPath, script);
        writeFileSync(skippedPath, skipped);
      }
      expect(script).toBe(readFileSync(scriptPath, 'utf8'));
      expect(skipped).toBe(readFileSync(skippedPath, 'utf8'));
    });
  }

  it('replaces only its own table, in one file: create-if-missing, delete, build', () => {
    const script = renderRuleset(checkFilter([]), 'weft0');
    const statements = script.split('\n').filter((l) => /^(table|delete|flush|add)\b/.test(l));
    expect(statements).toEqual(['table inet weft {}', 'delete table inet weft', 'table inet weft {']);
    expect(script).not.toMatch(/flush ruleset|table (ip|ip6|arp|bridge|netdev) /);
    expect(renderRemoval()).toBe('table inet weft {}\ndelete table inet weft\n');
  });

  it('the same filter in another order gives the same text', () => {
    const a: WireFilter = [{ srcIPs: ['100.64.0.3', '100.64.0.2'], dstPorts: [{ ip: '100.64.0.1', ports: '80' }, { ip: '100.64.0.1', ports: '22' }], protos: [17, 6] }];
    const b: WireFilter = [{ srcIPs: ['100.64.0.2', '100.64.0.3'], dstPorts: [{ ip: '100.64.0.1', ports: '22' }, { ip: '100.64.0.1', ports: '80' }], protos: [6, 17] }];
    expect(renderRuleset(checkFilter(a), 'weft0')).toBe(renderRuleset(checkFilter(b), 'weft0'));
  });

  it('refuses an interface name that would need quoting in nft', () => {
    expect(() => checkInterfaceName('weft0" accept')).toThrow(/cannot be used/);
    expect(() => checkInterfaceName('a-very-long-interface-name')).toThrow(/cannot be used/);
    expect(checkInterfaceName('wl-l1-a-wft')).toBe('wl-l1-a-wft');
  });
});
