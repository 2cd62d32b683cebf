import { describe, expect, it } from 'vitest';
import { caretOf, offsetOf } from '../../src/components/text-position.js';

const TEXT = '{\n  "acls": [\n    { "src": ["group:ghosts"] },\n  ],\n}\n';

describe('text positions of the policy editor', () => {
  it('a reported line and column is the offset of that character', () => {
    const off = offsetOf(TEXT, 3, 15);
    expect(TEXT.slice(off, off + 13)).toBe('"group:ghosts');
    expect(offsetOf(TEXT, 1, 1)).toBe(0);
    expect(offsetOf(TEXT, 2, 3)).toBe(TEXT.indexOf('"acls"'));
  });

  it('a column past the end of its line stops at the line end, a line past the text at its end (a problem reported for an older text still lands)', () => {
    expect(offsetOf(TEXT, 1, 99)).toBe(1);
    expect(offsetOf(TEXT, 99, 1)).toBe(TEXT.length);
    expect(offsetOf(TEXT, 2, 0)).toBe(2);
  });

  it('caretOf is the inverse of offsetOf', () => {
    for (let off = 0; off <= TEXT.length; off++) {
      const { line, col } = caretOf(TEXT, off);
      expect(offsetOf(TEXT, line, col)).toBe(off);
    }
    expect(caretOf(TEXT, TEXT.indexOf('"group'))).toEqual({ line: 3, col: 15 });
  });
});
