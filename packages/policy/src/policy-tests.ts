/**
 * The policy's own `tests`: each `accept` entry must be reachable from every address of `src`, each
 * `deny` entry from none, judged on the compiled filters of the nodes that receive the traffic.
 */
import { containsAddr, formatAddr, type AddrSet } from './addr.js';
import type { Compilation } from './compile.js';
import { PolicyError } from './errors.js';
import type { NodeRule } from './filter.js';
import type { Policy, Selector, TestCase } from './model.js';
import { ANY } from './select.js';

/** Tests address at most this many addresses per side; a wider selector is an error, not a slow loop. */
const MAX_TEST_ADDRS = 1024;

export function runTests(policy: Policy, c: Compilation): PolicyError[] {
  const errors: PolicyError[] = [];
  for (const t of policy.tests) {
    const src = addresses(c, t.src);
    if (typeof src === 'string') {
      errors.push(new PolicyError(t.pos, `test src "${t.srcText}": ${src}`));
      continue;
    }
    for (const [kind, cases] of [['accept', t.accept], ['deny', t.deny]] as const) {
      for (const tc of cases) {
        const verdict = check(c, src, tc, t.proto);
        if (typeof verdict === 'string') errors.push(new PolicyError(tc.pos, `test from "${t.srcText}" to "${tc.text}": ${verdict}`));
        else if (kind === 'accept' && verdict.denied) errors.push(new PolicyError(tc.pos, `test failed: "${t.srcText}" cannot reach "${tc.text}" (proto ${t.proto}) from ${verdict.denied}, but the test says accept`));
        else if (kind === 'deny' && verdict.allowed) errors.push(new PolicyError(tc.pos, `test failed: "${t.srcText}" can reach "${tc.text}" (proto ${t.proto}) from ${verdict.allowed.from}, allowed by the rule at line ${verdict.allowed.line}, but the test says deny`));
      }
    }
  }
  return errors;
}

type Address = { family: 4 | 6; value: bigint; text: string };

function addresses(c: Compilation, sel: Selector): Address[] | string {
  const set = c.index.resolve(sel);
  if (set === ANY) return 'names every address; a test needs a user, tag, host or IP';
  const out: Address[] = [];
  for (const [family, ranges] of [[4, set.v4], [6, set.v6]] as const) {
    for (const [lo, hi] of ranges) {
      if (hi - lo >= BigInt(MAX_TEST_ADDRS) || out.length > MAX_TEST_ADDRS) return `names more than ${MAX_TEST_ADDRS} addresses; test a single host or IP`;
      for (let v = lo; v <= hi; v++) out.push({ family, value: v, text: formatAddr(family, v) });
    }
  }
  if (out.length === 0) return 'matches no node address, so it cannot be checked';
  return out;
}


function check(c: Compilation, src: Address[], tc: TestCase, proto: number): { denied?: string; allowed?: { from: string; line: number } } | string {
  const dst = addresses(c, tc.sel);
  if (typeof dst === 'string') return dst;
  let pairs = 0;
  let denied: string | undefined;
  let allowed: { from: string; line: number } | undefined;
  for (const a of src) {
    for (const b of dst) {
      if (a.family !== b.family) continue;
      pairs++;
      const rule = allowedBy(c, a, b, tc.port, proto);
      if (rule) allowed ??= { from: a.text, line: rule.pos.line };
      else denied ??= a.text;
    }
  }
  if (pairs === 0) return 'source and destination share no IP family, so it cannot be checked';
  return { ...(denied ? { denied } : {}), ...(allowed ? { allowed } : {}) };
}

function allowedBy(c: Compilation, a: Address, b: Address, port: number, proto: number): NodeRule | null {
  for (const owner of c.index.owners(b.family, b.value)) {
    for (const r of c.rules[owner]!) {
      if (!r.protos.includes(proto)) continue;
      if (r.src !== ANY && !containsAddr(r.src, a.family, a.value)) continue;
      if (r.dst.some((d) => d.ports.first <= port && port <= d.ports.last && (d.set === ANY || containsAddr(d.set as AddrSet, b.family, b.value)))) return r;
    }
  }
  return null;
}
