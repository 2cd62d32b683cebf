/**
 * Enforcing the packet filter on this node (docs/design.md "Access policy"). The engine calls
 * `apply` with every full netmap, before it programs WireGuard's peers, and asks `blocksTunnel`
 * whether peers may be configured at all.
 *
 * States (`weft status` shows them in words):
 * - off: no filter from the server; tunnel traffic is not filtered (Weft's table is removed);
 * - enforcing: the server's filter is in force;
 * - kept: the last transaction failed; the previous ruleset, which the kernel still holds
 *   (a failed `nft -f` changes nothing), stays in force;
 * - blocked: a filter could not be put in force and none was (nft missing, or the first
 *   transaction failed): peers are withheld from WireGuard, so nothing arrives over the tunnel.
 *   Falling back to "allow everything" is exactly what a firewall must not do.
 */
import type { Logger } from '../log.js';
import { deleteLostFlows, type TunnelSources } from './conntrack.js';
import { runCommand, type CommandRunner } from './exec.js';
import { checkFilter, type CheckedFilter, type SkippedRule, type WireFilter } from './filter.js';
import { merge, parseRange, type Range } from './ranges.js';
import { renderRemoval, renderRuleset, TABLE } from './render.js';

export type FirewallState = 'off' | 'enforcing' | 'kept' | 'blocked';

export interface FirewallStatus {
  state: FirewallState;
  /** Rules in force: the server's (enforcing) or the previous ones (kept); 0 otherwise. */
  rules: number;
  /** Rules of the server's filter left out as malformed (each would only have allowed more). */
  skippedRules: SkippedRule[];
  /** Why the last change could not be applied (kept, blocked); null otherwise. */
  error: string | null;
}

export class FirewallError extends Error {}

export interface FirewallOptions {
  interfaceName: string;
  log: Logger;
  /** For tests; default runs the real binaries found on PATH. */
  run?: CommandRunner;
}

export class Firewall {
  private readonly run: CommandRunner;
  private statusNow: FirewallStatus = { state: 'off', rules: 0, skippedRules: [], error: null };
  /** What is in force: the filter (null = none), and the script that put it there. */
  private inForce: { filter: CheckedFilter | null; script: string | null } = { filter: null, script: null };
  /** Whether the kernel was asked for a table left by an earlier daemon (once, with the first "no filter"). */
  private looked = false;
  /** The conntrack cleanups, one after another (deleteLostFlows never throws). */
  private cleanup: Promise<void> = Promise.resolve();

  constructor(private readonly opts: FirewallOptions) {
    this.run = opts.run ?? runCommand;
  }

  get status(): FirewallStatus {
    return this.statusNow;
  }

  /** No peer may be configured: a filter is wanted and none could be put in force. */
  get blocksTunnel(): boolean {
    return this.statusNow.state === 'blocked';
  }

  /**
   * Puts `wire` in force (undefined = no filter), in one nft transaction; unchanged text is not
   * re-applied. On failure the state says what stays in force, and the error is thrown.
   * `sources`: what may arrive over the tunnel (the peers' allowed IPs), for the conntrack cleanup.
   */
  async apply(wire: WireFilter | undefined, sources: string[]): Promise<void> {
    const filter = wire ? checkFilter(wire) : null;
    const script = filter ? renderRuleset(filter, this.opts.interfaceName) : null;
    if (!filter && !this.looked && this.inForce.script === null) {
      // A daemon killed with -9 leaves its table in force; "no filter" must remove it.
      this.looked = true;
      if (await this.tableExists()) this.inForce = { filter: checkFilter([]), script: 'left by an earlier daemon' };
    }
    if (script === this.inForce.script && this.statusNow.state !== 'blocked' && this.statusNow.error === null) {
      return;
    }
    for (const s of filter?.skipped ?? []) this.opts.log('warn', `packet filter rule ${s.index} left out: ${s.reason}`);
    const failure = await this.transaction(script ?? renderRemoval());
    if (failure) {
      // Without a table of ours there is nothing to remove: "no filter" is in force anyway.
      if (!filter && (this.inForce.script === null)) {
        this.statusNow = { state: 'off', rules: 0, skippedRules: [], error: null };
        return;
      }
      const kept = this.inForce.script !== null;
      const message = kept
        ? `cannot apply the new packet filter (${failure}); the previous ruleset stays in force`
        : `cannot enforce the packet filter (${failure}); no peers are configured until it can be`;
      this.statusNow = { state: kept ? 'kept' : 'blocked', rules: this.inForce.filter?.rules.length ?? 0, skippedRules: [], error: message };
      throw new FirewallError(message);
    }
    const before = this.inForce.filter;
    this.inForce = { filter, script };
    this.looked = true;
    this.statusNow = filter
      ? { state: 'enforcing', rules: filter.rules.length, skippedRules: filter.skipped, error: null }
      : { state: 'off', rules: 0, skippedRules: [], error: null };
    this.opts.log('info', filter ? 'packet filter applied' : 'packet filter removed', filter ? { rules: filter.rules.length, skipped: filter.skipped.length } : {});
    // After the filter is in force, not before returning: the rules already stop those flows'
    // packets in; the cleanup only makes this node's end see the cut (conntrack.ts).
    if (filter) this.cleanup = this.cleanup.then(() => this.cutLostFlows(before, filter, sources));
  }

  /** Resolves when the conntrack cleanup of every apply so far has finished (tests, bench). */
  settled(): Promise<void> {
    return this.cleanup;
  }

  private async cutLostFlows(before: CheckedFilter | null, after: CheckedFilter, sources: string[]): Promise<void> {
    const { deleted, error } = await deleteLostFlows(this.run, before, after, tunnelSources(sources));
    if (error) this.opts.log('warn', `flows the new filter forbids were not cut at once: ${error}`);
    else if (deleted > 0) this.opts.log('info', 'connections the new filter forbids were cut', { deleted });
  }

  /** Removes Weft's table (interface gone: logout, revoke, daemon exit). Best effort. */
  async clear(): Promise<void> {
    if (this.inForce.script === null && this.statusNow.state !== 'blocked') return;
    const failure = await this.transaction(renderRemoval());
    if (failure) this.opts.log('warn', `removing the packet filter table failed: ${failure}`);
    this.inForce = { filter: null, script: null };
    this.statusNow = { state: 'off', rules: 0, skippedRules: [], error: null };
  }

  /** Whether Weft's table is in the kernel (read only; false when nft cannot say). */
  private async tableExists(): Promise<boolean> {
    const r = await this.run(['nft', 'list', 'table', 'inet', TABLE]);
    return r.code === 0;
  }

  /** `nft -f -`; the reason it failed, or null. */
  private async transaction(script: string): Promise<string | null> {
    const r = await this.run(['nft', '-f', '-'], script);
    if (r.missing) return 'nft not found: install the nftables package';
    if (r.code !== 0) return `nft failed: ${firstLines(r.stderr) || `exit ${r.code ?? 'by signal'}`}`;
    return null;
  }
}

function firstLines(text: string): string {
  return text.trim().split('\n').slice(0, 2).join(' / ').replace(/[^\x20-\x7e]/g, '?').slice(0, 300);
}

function tunnelSources(cidrs: string[]): TunnelSources {
  const ranges: Range[] = [];
  for (const c of cidrs) {
    const r = parseRange(c);
    if (r.ok) ranges.push(r.value);
  }
  return { 4: merge(ranges.filter((r) => r.family === 4)), 6: merge(ranges.filter((r) => r.family === 6)) };
}
