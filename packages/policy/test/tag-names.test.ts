/**
 * One rule for tag names everywhere (Tailscale's tailcfg.CheckTag): the wire schema that REST
 * bodies pass (@weft/protocol Tag), the policy's tagOwners and selectors, and NODES_JSON accept
 * exactly the same names, mixed case included, and a tag's case is part of its name.
 */
import { describe, expect, it } from 'vitest';
import { isTagName, SetNodeTags } from '@weft/protocol';
import { compile, parseNodes, parsePolicy, PolicyRejected } from '../src/index.js';

// Valid under Tailscale's rule; then ones it refuses (digit or dash first, empty, punctuation, non-ASCII, no prefix, a capital prefix).
const VALID = ['tag:web', 'tag:WebProd', 'tag:DB', 'tag:a', 'tag:x-1', 'tag:k8s-Node-2', 'tag:a-', `tag:${'a'.repeat(100)}`];
const INVALID = ['tag:', 'tag:1x', 'tag:-x', 'tag:web_1', 'tag:web.1', 'tag:wéb', 'tag:web prod', 'web', 'Tag:web', 'TAG:web', 'tag:web:443', 'tag:ａ'];

const policyWith = (tag: string) => JSON.stringify({ tagOwners: { [tag]: [] }, acls: [{ action: 'accept', src: [tag], dst: [`${tag}:22`] }] });
const nodesWith = (tag: string) => JSON.stringify({ users: [], nodes: [{ id: 1, name: 'n1', user: null, tags: [tag], ipv4: '100.64.0.1', ipv6: null, advertisedRoutes: [], approvedRoutes: [] }] });
const accepts = (f: () => unknown): boolean => {
  try {
    f();
    return true;
  } catch (e) {
    if (e instanceof PolicyRejected) return false;
    throw e;
  }
};

describe('tag names', () => {
  it.each([...VALID.map((t) => [t, true] as const), ...INVALID.map((t) => [t, false] as const)])('%s: accepted=%s by the wire schema, the policy and NODES_JSON alike', (tag, valid) => {
    expect(isTagName(tag)).toBe(valid);
    expect(SetNodeTags.safeParse({ tags: [tag] }).success).toBe(valid);
    expect(accepts(() => parsePolicy(policyWith(tag)))).toBe(valid);
    expect(accepts(() => parseNodes(nodesWith(tag)))).toBe(valid);
  });

  it('the refusal names the tag and the rule (wire schema and policy)', () => {
    const wire = SetNodeTags.safeParse({ tags: ['tag:1x'] });
    expect(wire.error?.issues[0]?.message).toBe('"tag:1x" must look like tag:name (a letter, then letters, digits and "-"; case-sensitive)');
    const rejected = (() => {
      try {
        parsePolicy(policyWith('tag:1x'));
      } catch (e) {
        return e as PolicyRejected;
      }
      throw new Error('accepted');
    })();
    expect(rejected.errors.map((e) => e.message)).toContain('tag name "tag:1x" must look like tag:name (a letter, then letters, digits and "-"; case-sensitive)');
  });

  it('case is part of the name: tag:WebProd matches only nodes tagged tag:WebProd, not tag:webprod', () => {
    const policy = parsePolicy(JSON.stringify({
      tagOwners: { 'tag:WebProd': [], 'tag:webprod': [], 'tag:Client': [] },
      acls: [{ action: 'accept', src: ['tag:Client'], dst: ['tag:WebProd:443'] }],
    }));
    const node = (id: number, name: string, tag: string) => ({ id, name, user: null, tags: [tag], ipv4: `100.64.0.${id}`, ipv6: null, advertisedRoutes: [], approvedRoutes: [] });
    const nodes = parseNodes(JSON.stringify({ users: [], nodes: [node(1, 'client', 'tag:Client'), node(2, 'upper', 'tag:WebProd'), node(3, 'lower', 'tag:webprod')] }));
    const out = compile(policy, nodes).compiled.nodes;
    expect(out.upper).toEqual({ rules: [{ srcIPs: ['100.64.0.1'], dstPorts: [{ ip: '100.64.0.2', ports: '443-443' }], protos: [6, 17, 1, 58].sort((a, b) => a - b) }], peers: ['client'] });
    expect(out.lower).toEqual({ rules: [], peers: [] });
    expect(out.client!.peers).toEqual(['upper']);
    // A selector in another case than tagOwners defines is an unknown tag, not a match.
    expect(() => parsePolicy(JSON.stringify({ tagOwners: { 'tag:WebProd': [] }, acls: [{ action: 'accept', src: ['*'], dst: ['tag:webprod:443'] }] }))).toThrow(PolicyRejected);
  });
});
