import { describe, expect, it } from 'vitest';
import { redactUrl } from '../../src/cli/db.js';

describe('db CLI', () => {
  it('never prints a database password', () => {
    expect(redactUrl('postgres://weft:s3cr%40t@db.internal:5432/weft')).toBe('postgres://weft:***@db.internal:5432/weft');
    expect(redactUrl('postgresql://weft@db/weft')).toBe('postgresql://weft@db/weft');
    expect(redactUrl('postgres://db/weft')).toBe('postgres://db/weft');
  });
});
