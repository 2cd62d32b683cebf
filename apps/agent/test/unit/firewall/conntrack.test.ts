import { describe, expect, it } from 'vitest';
import { lostFlows, parseConntrackList } from '../../../src/firewall/conntrack.js';
import { checkFilter } from '../../../src/firewall/filter.js';
import { merge, parseRange, type Range } from '../../../src/firewall/ranges.js';

// As conntrack 1.4.7 prints `conntrack -L -f ipv4 -p tcp` and `-f ipv6` (Debian 12).
const LIST_V4 = [
  'tcp      6 431999 ESTABLISHED src=100.64.0.2 dst=100.64.0.1 sport=40164 dport=22 src=100.64.0.1 dst=100.64.0.2 sport=22 dport=40164 [ASSURED] mark=0 use=1',
  'tcp      6 431990 ESTABLISHED src=100.64.0.2 dst=100.64.0.1 sport=40170 dport=8080 src=100.64.0.1 dst=100.64.0.2 sport=8080 dport=40170 [ASSURED] mark=0 use=1',
  'tcp      6 117 TIME_WAIT src=10.77.0.12 dst=10.77.0.11 sport=51000 dport=22 src=10.77.0.11 dst=10.77.0.12 sport=22 dport=51000 [ASSURED] mark=0 use=1',
  'tcp      6 431999 ESTABLISHED src=100.64.0.1 dst=100.64.0.2 sport=50000 dport=5432 src=100.64.0.2 dst=100.64.0.1 sport=5432 dport=50000 [ASSURED] mark=0 use=1',
].join('\n');
const LIST_V6 = 'tcp      6 431999 ESTABLISHED src=fd7a:115c:a1e0::2 dst=fd7a:115c:a1e0::1 sport=40562 dport=8080 src=fd7a:115c:a1e0::1 dst=fd7a:115c:a1e0::2 sport=8080 dport=40562 [ASSURED] mark=0 use=1\n';

const sources = (...cidrs: string[]) => {
  const rs = cidrs.map((c) => (parseRange(c) as { ok: true; value: Range }).value);
  return { 4: merge(rs.filter((r) => r.family === 4)), 6: merge(rs.filter((r) => r.family === 6)) };
};

describe('flows that lost permission', () => {
  it('reads the original tuple of each entry, both families', () => {
    const e = parseConntrackList(LIST_V4 + '\n' + LIST_V6);
    expect(e.map((x) => `${x.srcText}:${x.sport}>${x.dstText}:${x.dport}`)).toEqual([
      '100.64.0.2:40164>100.64.0.1:22', '100.64.0.2:40170>100.64.0.1:8080', '10.77.0.12:51000>10.77.0.11:22',
      '100.64.0.1:50000>100.64.0.2:5432', 'fd7a:115c:a1e0::2:40562>fd7a:115c:a1e0::1:8080',
    ]);
  });

  it('picks tunnel flows the old filter allowed and the new one does not; LAN flows and flows this node opened stay', () => {
    const before = checkFilter([{ srcIPs: ['100.64.0.2', 'fd7a:115c:a1e0::2'], dstPorts: [{ ip: '100.64.0.1', ports: '*' }, { ip: 'fd7a:115c:a1e0::1', ports: '*' }], protos: [6] }]);
    const after = checkFilter([{ srcIPs: ['100.64.0.2'], dstPorts: [{ ip: '100.64.0.1', ports: '22' }], protos: [6] }]);
    const lost = lostFlows(parseConntrackList(LIST_V4 + '\n' + LIST_V6), before, after, sources('100.64.0.0/10', 'fd7a:115c:a1e0::/48'));
    expect(lost.map((x) => `${x.srcText}>${x.dport}`)).toEqual(['100.64.0.2>8080', 'fd7a:115c:a1e0::2>8080']);
  });

  it('from no filter (everything allowed) to a filter: every tunnel flow it does not allow is lost', () => {
    const after = checkFilter([{ srcIPs: ['100.64.0.2'], dstPorts: [{ ip: '100.64.0.1', ports: '8080' }], protos: [6] }]);
    const lost = lostFlows(parseConntrackList(LIST_V4), null, after, sources('100.64.0.2/32'));
    expect(lost.map((x) => `${x.srcText}>${x.dport}`)).toEqual(['100.64.0.2>22']);
  });

  it('a connection this node opened to a peer is never cut: the sources are the peers\' allowed IPs, not the tailnet prefix', () => {
    // 100.64.0.1 -> .2:5432 was opened here; with the /10 as "sources" it would have been deleted,
    // and the output chain would then reset the node's own connection at its next segment.
    const after = checkFilter([]);
    const lost = lostFlows(parseConntrackList(LIST_V4), null, after, sources('100.64.0.2/32', '100.64.0.3/32'));
    expect(lost.some((x) => x.srcText === '100.64.0.1')).toBe(false);
  });
});
