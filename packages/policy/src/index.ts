/**
 * @weft/policy: the access-policy engine. Pure: policy text (Tailscale-compatible HuJSON) and a
 * set of users and nodes in, per node the packet-filter rules for traffic arriving at it and its
 * visible peers out, sorted and deterministic. No I/O of any kind (no fs, net, clock, env, random):
 * callers read files and databases and hand the text in. Must not import anything in the repo but
 * @weft/protocol (for the tag-name rule, protocol's tags.ts, shared with the wire schema and REST). See README.md for the language and the assumptions made.
 */
import { compile, type Compilation } from './compile.js';
import { PolicyRejected } from './errors.js';
import type { Compiled } from './filter.js';
import type { Policy } from './model.js';
import type { Prepared } from './nodes.js';
import { parsePolicy, type ParseOptions } from './parse.js';
import { runTests } from './policy-tests.js';

export { compile, type Compilation } from './compile.js';
export { PolicyError, PolicyRejected, type Pos } from './errors.js';
export type { Compiled, FilterRule, NodeView } from './filter.js';
export { parseHuJson, type JsonNode } from './hujson.js';
export { ALLOW_ALL, type Policy, type Rule, type Selector } from './model.js';
export { parseNodes, prepareNodes, type NodeInput, type NodesInput, type Prepared, type UserInput } from './nodes.js';
export { explain, ExplainRefused, MAX_EXPLAIN_ADDRS, type ExplainEndpoint, type ExplainPair, type ExplainQuery, type Explanation } from './explain.js';
export { parsePolicy, type ParseOptions } from './parse.js';
export { runTests } from './policy-tests.js';
export { tagRefusal, type TagApplier, type TagRefusal } from './tag-owners.js';
export { DEFAULT_PROTOS } from './protocols.js';
export { compileReference } from './reference.js';
export { PolicyViews, type LiveNode, type ViewChanges, type ViewClass } from './incremental.js';

/**
 * Parses, compiles and runs the policy's `tests` against `nodes`: the whole acceptance check.
 * Throws PolicyRejected with every problem (syntax, validation, failing tests) by line and column.
 * `policyText` null means no policy: every node reaches every node.
 */
export function evaluate(policyText: string | null, nodes: Prepared, opts: ParseOptions = {}): Compiled {
  const policy: Policy | null = policyText === null ? null : parsePolicy(policyText, opts);
  const c: Compilation = compile(policy, nodes);
  if (policy) {
    const failures = runTests(policy, c);
    if (failures.length) throw new PolicyRejected(failures);
  }
  return c.compiled;
}
