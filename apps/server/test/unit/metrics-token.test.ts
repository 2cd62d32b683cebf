import { describe, expect, it } from 'vitest';
import { ServerMetrics, tokenChecker } from '../../src/metrics.js';

describe('metrics token check', () => {
  const ok = tokenChecker('metrics-token-0123456789abcdef');

  it('accepts exactly the configured bearer token', () => {
    expect(ok('Bearer metrics-token-0123456789abcdef')).toBe(true);
    expect(ok('bearer metrics-token-0123456789abcdef')).toBe(true);
  });

  it('refuses a missing, wrong, prefixed, truncated or non-bearer token', () => {
    for (const h of [undefined, '', 'Bearer ', 'Bearer metrics-token-0123456789abcde', 'Bearer metrics-token-0123456789abcdeff',
      'metrics-token-0123456789abcdef', 'Basic metrics-token-0123456789abcdef', 'Bearer  metrics-token-0123456789abcdef']) {
      expect(ok(h), String(h)).toBe(false);
    }
  });
});

describe('counterFrom (the hook for components that keep plain-number counters)', () => {
  it('exposes a plain number and a per-label record at scrape time', async () => {
    const m = new ServerMetrics();
    let packets = 0;
    const byKind: Record<string, number> = {};
    m.counterFrom('weft_test_packets_total', 'Test packets.', () => packets);
    m.counterFrom('weft_test_requests_total', 'Test requests.', () => byKind, 'kind');
    packets = 7;
    byKind.binding = 3;
    byKind.other = 1;
    const text = await m.exposition();
    expect(text).toContain('weft_test_packets_total 7');
    expect(text).toContain('weft_test_requests_total{kind="binding"} 3');
    packets = 9;
    expect(await m.exposition()).toContain('weft_test_packets_total 9');
  });
});
