import { describe, expect, it } from 'vitest';
import { Errors } from '../../src/errors.js';

describe('error catalogue', () => {
  it('internal is not retryable (a client retrying a deterministic 500 forever is a load generator)', () => {
    expect(Errors.internal).toMatchObject({ status: 500, retryable: false });
  });

  it('only transient conditions are retryable', () => {
    const retryable = Object.values(Errors).filter((d) => d.retryable).map((d) => d.code).sort();
    expect(retryable).toEqual(['rate_limited', 'request_timeout', 'unavailable']);
  });

  it('codes are unique', () => {
    const codes = Object.values(Errors).map((d) => d.code);
    expect(new Set(codes).size).toBe(codes.length);
  });
});
