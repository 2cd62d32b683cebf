/**
 * Addresses, MTU, link state and routes of a WireGuard interface, via iproute2. Command
 * construction is pure (`linkPlan`); `applyLink` runs it and removes what is no longer wanted.
 */
import { cidrAddress, isV6Cidr, normalizeCidr } from './cidr.js';
import type { Runner } from './exec.js';

/** WireGuard over IPv6 over a 1500-byte path leaves 1420; 1280 also fits PPPoE, tunnels, mobile. */
export const DEFAULT_MTU = 1280;

export interface LinkConfig {
  /** CIDRs assigned to the interface, e.g. "100.64.0.1/32". */
  addresses: string[];
  /** CIDRs routed via the interface, e.g. "100.64.0.0/10", "fd7a:115c:a1e0::/48". */
  routes: string[];
  mtu: number;
}

const family = (cidr: string) => (isV6Cidr(cidr) ? '-6' : '-4');

/** Commands that bring `name` to `want` (idempotent: `replace` everywhere). */
export function linkPlan(name: string, want: LinkConfig): string[][] {
  return [
    ['ip', 'link', 'set', 'dev', name, 'mtu', String(want.mtu), 'up'],
    ...want.addresses.map((a) => ['ip', family(a), 'addr', 'replace', a, 'dev', name]),
    ...want.routes.map((r) => ['ip', family(r), 'route', 'replace', normalizeCidr(r), 'dev', name]),
  ];
}

/** Commands that remove addresses and routes present before (`had`) but not in `want`. */
export function linkCleanupPlan(name: string, had: Pick<LinkConfig, 'addresses' | 'routes'>, want: LinkConfig): string[][] {
  const wantAddr = new Set(want.addresses.map((a) => `${cidrAddress(a)}`));
  const wantRoutes = new Set(want.routes.map(normalizeCidr));
  return [
    ...had.addresses.filter((a) => !wantAddr.has(cidrAddress(a))).map((a) => ['ip', family(a), 'addr', 'del', a, 'dev', name]),
    ...had.routes.filter((r) => !wantRoutes.has(normalizeCidr(r))).map((r) => ['ip', family(r), 'route', 'del', normalizeCidr(r), 'dev', name]),
  ];
}

interface IpAddrJson { addr_info?: Array<{ local?: string; prefixlen?: number; scope?: string }> }

/** Global-scope addresses on the link now (`ip -j addr show`), as CIDRs. */
export async function currentAddresses(run: Runner, name: string): Promise<string[]> {
  const out = JSON.parse(await run(['ip', '-j', 'addr', 'show', 'dev', name])) as IpAddrJson[];
  return out.flatMap((l) => l.addr_info ?? [])
    .filter((a) => a.local && a.scope !== 'link' && a.scope !== 'host')
    .map((a) => `${a.local}/${a.prefixlen}`);
}

/**
 * `ip` commands as one `ip -batch -` script: one process instead of one per command, which was
 * most of the time `configure` took. A batch line cannot carry options, so "-4"/"-6" go; ip
 * infers the family from the address. Arguments here never contain spaces (names, CIDRs, numbers).
 */
export function batchScript(plan: string[][]): string {
  return plan.map((argv) => argv.slice(1).filter((a) => a !== '-4' && a !== '-6').join(' ')).join('\n') + '\n';
}

/**
 * Applies `want`: link up with the MTU, addresses replaced, routes replaced; then removes
 * addresses on the link that are not wanted and routes we added before (`hadRoutes`) that are
 * not wanted any more. Routes we never added are left alone.
 */
export async function applyLink(run: Runner, name: string, want: LinkConfig, hadRoutes: string[]): Promise<void> {
  const had = { addresses: await currentAddresses(run, name), routes: hadRoutes };
  await run(['ip', '-batch', '-'], batchScript(linkPlan(name, want)));
  const cleanup = linkCleanupPlan(name, had, want);
  // -force: carry on past a line that fails; already gone is fine.
  if (cleanup.length > 0) await run(['ip', '-force', '-batch', '-'], batchScript(cleanup)).catch(() => undefined);
}

export async function linkExists(run: Runner, name: string): Promise<boolean> {
  return run(['ip', 'link', 'show', 'dev', name]).then(() => true, () => false);
}

export async function linkDown(run: Runner, name: string): Promise<void> {
  await run(['ip', 'link', 'set', 'dev', name, 'down']);
}

export async function linkDelete(run: Runner, name: string): Promise<void> {
  if (await linkExists(run, name)) await run(['ip', 'link', 'del', 'dev', name]).catch(() => undefined);
}
