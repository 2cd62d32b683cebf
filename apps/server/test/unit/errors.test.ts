import { describe, expect, it } from 'vitest';
import { Errors } from '../../src/errors.js';
import { isDatabaseBusy } from '../../src/db-busy.js';

describe('error catalogue', () => {
  it('internal is not retryable (a client retrying a deterministic 500 forever is a load generator)', () => {
    expect(Errors.internal).toMatchObject({ status: 500, retryable: false });
  });

  it('only transient conditions are retryable', () => {
    const retryable = Object.values(Errors).filter((d) => d.retryable).map((d) => d.code).sort();
    expect(retryable).toEqual(['database_busy', 'rate_limited', 'request_timeout', 'unavailable']);
  });

  it('codes are unique', () => {
    const codes = Object.values(Errors).map((d) => d.code);
    expect(new Set(codes).size).toBe(codes.length);
  });

  it('database_busy is only a lock wait or a lost session, never a constraint or a plain bug', () => {
    expect(isDatabaseBusy({ name: 'DriverAdapterError', cause: { originalCode: '55P03', originalMessage: 'canceling statement due to lock timeout' } })).toBe(true);
    expect(isDatabaseBusy(new Error('x', { cause: Object.assign(new Error('Connection terminated unexpectedly'), {}) }))).toBe(true);
    expect(isDatabaseBusy({ code: 'P2002', meta: { target: ['name'] } })).toBe(false);
    expect(isDatabaseBusy({ cause: { originalCode: '23505' } })).toBe(false);
    expect(isDatabaseBusy(new TypeError('undefined is not a function'))).toBe(false);
  });
});
