/** tagOwners: who may apply which tag (the REST route and the CLI ask this before a node's tags change). */
import { describe, expect, it } from 'vitest';
import { parsePolicy, tagRefusal } from '../src/index.js';

const policy = parsePolicy(`{
  "groups": { "group:ops": ["odin@example.com"] },
  "tagOwners": {
    "tag:web": ["group:ops"],
    "tag:db": ["thor@example.com"],
    "tag:any": ["autogroup:member"],
    "tag:admins": ["autogroup:admin"],
    "tag:ci": ["tag:web"],
  },
}`);

describe('tagRefusal', () => {
  it('refuses a tag the policy does not define, naming it', () => {
    expect(tagRefusal(policy, ['tag:web', 'tag:nope'], null)).toMatchObject({ reason: 'unknown', tag: 'tag:nope' });
    expect(tagRefusal(policy, ['tag:web', 'tag:nope'], null)?.message).toMatch(/tag "tag:nope" is not defined in the policy's tagOwners/);
    expect(tagRefusal(policy, ['tag:nope'], { login: 'odin@example.com', admin: true })?.message).toMatch(/"tag:nope"/);
  });
  it('lets an API key (no user) apply any defined tag', () => {
    expect(tagRefusal(policy, ['tag:web', 'tag:db', 'tag:ci', 'tag:admins'], null)).toBeNull();
  });
  it('lets a user apply a tag through their login, a group, autogroup:member and autogroup:admin', () => {
    expect(tagRefusal(policy, ['tag:web', 'tag:any'], { login: 'odin@example.com', admin: false })).toBeNull();
    expect(tagRefusal(policy, ['tag:db'], { login: 'thor@example.com', admin: false })).toBeNull();
    expect(tagRefusal(policy, ['tag:admins'], { login: 'loki@example.com', admin: true })).toBeNull();
  });
  it('refuses a user who owns none of the entries, naming the tag and its owners', () => {
    expect(tagRefusal(policy, ['tag:db'], { login: 'odin@example.com', admin: true })).toEqual({ reason: 'not-owner', tag: 'tag:db', message: 'odin@example.com is not an owner of tag "tag:db" in the policy\'s tagOwners (owners: thor@example.com)' });
    expect(tagRefusal(policy, ['tag:admins'], { login: 'odin@example.com', admin: false })?.message).toMatch(/not an owner of tag "tag:admins"/);
    // A tag owning a tag lets tagged nodes apply it, never a person.
    expect(tagRefusal(policy, ['tag:ci'], { login: 'odin@example.com', admin: true })?.message).toMatch(/not an owner of tag "tag:ci"/);
  });
  it('an empty list is always allowed (the node returns to its user)', () => {
    expect(tagRefusal(policy, [], { login: 'nobody@example.com', admin: false })).toBeNull();
  });
});
