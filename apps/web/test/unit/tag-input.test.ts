import { describe, expect, it } from 'vitest';
import { badTag, parseTags } from '../../src/components/tag-input.js';

describe('tags typed into the UI', () => {
  it('keep their case and are judged by the server rule (mixed case is a valid tag name)', () => {
    expect(parseTags('tag:WebProd, tag:db tag:WebProd')).toEqual(['tag:WebProd', 'tag:db']);
    expect(badTag(parseTags('tag:WebProd tag:K8s-Node'))).toBeNull();
    expect(parseTags('  ')).toEqual([]);
  });
  it('a malformed one is named before anything is sent', () => {
    expect(badTag(['tag:web', 'tag:1x'])).toBe('tag "tag:1x" must look like tag:name (a letter, then letters, digits and "-"; case-sensitive)');
    expect(badTag(['web'])).toMatch(/^tag "web" must look like/);
  });
});
