/** HuJSON syntax and policy validation: every problem found, each at its line and column. */
import { describe, expect, it } from 'vitest';
import { formatSet, parseAddrSet } from '../src/addr.js';
import { parsePolicy, PolicyRejected } from '../src/index.js';

function problems(text: string): string[] {
  try {
    parsePolicy(text);
  } catch (e) {
    if (e instanceof PolicyRejected) return e.errors.map(String);
    throw e;
  }
  return [];
}

describe('HuJSON', () => {
  it('accepts comments and trailing commas', () => {
    expect(problems('/* a */ {\n // b\n "acls": [],\n}')).toEqual([]);
  });
  it('locates a syntax error by line and column', () => {
    expect(problems('{\n  "acls": [\n    {"action" "accept"}\n  ]\n}')).toEqual(['3:15: expected : after key "action", found "\\""']);
    expect(problems('{\n "acls": [1,, 2]}')).toEqual(['2:13: expected a value, found ","']);
    expect(problems('{ /* never closed')).toEqual(['1:3: unterminated /* comment']);
  });
  it('rejects a duplicate key at the second one', () => {
    expect(problems('{"acls": [],\n "acls": []}')).toEqual(['2:2: duplicate key "acls"']);
  });
});

describe('policy validation', () => {
  it('groups may not nest (a nested group is reported, not expanded)', () => {
    expect(problems('{"groups": {"group:a": ["group:b"], "group:b": ["x@example.com"]}}')[0]).toMatch(/^1:25: group "group:a" contains "group:b": groups cannot contain other groups/);
  });
  it('ipset cycles are reported with the path', () => {
    expect(problems('{"ipsets": {"ipset:a": ["ipset:b"], "ipset:b": ["10.0.0.0/8", "ipset:a"]}}')).toEqual(['1:63: ipset cycle: ipset:a -> ipset:b -> ipset:a']);
  });
  it('bad ports, CIDRs and protocols are named', () => {
    const p = problems('{"acls": [{"action": "accept", "src": ["10.0.0.0/33"], "dst": ["10.0.0.1:65536", "10.0.0.1:x"], "proto": "quic"}]}');
    expect(p).toEqual([
      '1:40: "10.0.0.0/33" has a bad prefix length (0-32)',
      '1:64: bad port "65536" in "65536": use *, a port 0-65535, a range a-b, or a comma list of those',
      '1:82: bad port "x" in "x": use *, a port 0-65535, a range a-b, or a comma list of those',
      '1:106: unknown proto "quic": use a name (tcp, udp, icmp, sctp, gre, esp, ah, ...) or an IANA number 0-255',
    ]);
  });
  it('a protocol without ports needs :*', () => {
    expect(problems('{"acls": [{"action": "accept", "src": ["*"], "dst": ["*:22"], "proto": "icmp"}]}')).toEqual(['1:54: "*:22": protocol icmp has no ports, use :*']);
  });
  it('unsupported Tailscale features are rejected by name, never ignored', () => {
    expect(problems('{"ssh": [], "acls": [{"action": "accept", "src": ["autogroup:admin"], "dst": ["autogroup:internet:*"]}]}')).toEqual([
      '1:2: "ssh" is a Tailscale policy feature Weft does not support yet; remove it',
      '1:51: autogroup:admin is a Tailscale autogroup Weft does not support yet',
      '1:79: autogroup:internet is a Tailscale autogroup Weft does not support yet',
    ]);
  });
  it('accepts the legacy acl field names users and ports', () => {
    expect(problems('{"acls": [{"action": "accept", "users": ["*"], "ports": ["*:*"]}]}')).toEqual([]);
  });
  it('validates autoApprovers routes and owners', () => {
    expect(problems('{"autoApprovers": {"routes": {"10.0.0.1/8": ["group:x"]}, "exitNode": ["tag:y"]}}')).toEqual([
      '1:31: "10.0.0.1/8" has host bits set (the network is 10.0.0.0/8)',
      '1:46: autoApprovers route "10.0.0.1/8": unknown group "group:x"',
      '1:72: autoApprovers exitNode: unknown tag "tag:y" (tags must be declared in tagOwners)',
    ]);
  });
});

describe('address sets', () => {
  it('formats ranges as the fewest CIDRs and IPv6 per RFC 5952', () => {
    const r = parseAddrSet('10.0.0.1-10.0.0.6');
    expect('set' in r && formatSet(r.set)).toEqual(['10.0.0.1', '10.0.0.2/31', '10.0.0.4/31', '10.0.0.6']);
    const v6 = parseAddrSet('2001:db8:0:0:1:0:0:1');
    expect('set' in v6 && formatSet(v6.set)).toEqual(['2001:db8::1:0:0:1']);
  });
});

describe('directory groups (SCIM)', () => {
  const text = '{"groups": {"group:eng": ["carol@"]}, "acls": [{"action": "accept", "src": ["group:eng", "group:ops"], "dst": ["*:*"]}]}';
  it('a group the directory defines may be named as if the policy defined it; one both define gets both member lists', () => {
    const p = parsePolicy(text, { directoryGroups: new Map([['group:ops', ['dave@']], ['group:eng', ['alice@', 'bob@example.com']]]) });
    expect(p.groups.get('group:ops')).toEqual(['dave@']);
    expect(p.groups.get('group:eng')).toEqual(['alice@', 'bob@example.com', 'carol@']);
  });
  it('without it the group is unknown; missingGroupsEmpty makes it an empty group instead', () => {
    expect(problems(text)).toEqual([expect.stringContaining('unknown group "group:ops"')]);
    expect(parsePolicy(text, { missingGroupsEmpty: true }).groups.get('group:ops')).toEqual([]);
  });
});
