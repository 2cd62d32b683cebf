/** SCIM filters and PATCH on plain documents: the pure logic under /scim/v2 (integration: scim.test.ts). */
import { describe, expect, it } from 'vitest';
import { ScimError } from '../../src/scim/errors.js';
import { listConstraints, matches, parseFilter } from '../../src/scim/filter.js';
import { applyPatch } from '../../src/scim/patch.js';
import { GROUP_PATCH_SCHEMA, policyGroupName, USER_PATCH_SCHEMA, userFields } from '../../src/scim/resources.js';

const refusal = (fn: () => unknown) => {
  try {
    fn();
  } catch (err) {
    if (err instanceof ScimError) return { status: err.status, scimType: err.scimType, detail: err.message };
    throw err;
  }
  throw new Error('expected a ScimError');
};

describe('filters', () => {
  it('parses and, or, not, pr, parentheses and every compare operator in any case', () => {
    const f = parseFilter('(type EQ "work" or type eq "home") And not (primary eq false) and value pr');
    expect(matches(f, { type: 'Work', primary: true, value: 'a@x' })).toBe(true);
    expect(matches(f, { type: 'work', primary: 'False', value: 'a@x' })).toBe(false);
    expect(matches(f, { type: 'other', value: 'a@x' })).toBe(false);
    expect(matches(parseFilter('value sw "AB" and value ew "yz" and value co "m"'), { value: 'abmyz' })).toBe(true);
  });
  it('list constraints: eq joined by and on the allowed attributes only', () => {
    expect(listConstraints('userName eq "a" and EXTERNALID eq "b"', ['userName', 'externalId'], 'Users')).toEqual([{ attr: 'userName', value: 'a' }, { attr: 'externalId', value: 'b' }]);
    expect(refusal(() => listConstraints('emails.value eq "a"', ['userName'], 'Users'))).toMatchObject({ scimType: 'invalidFilter' });
    expect(refusal(() => listConstraints('userName eq 3', ['userName'], 'Users')).detail).toContain('quoted string');
  });
});

describe('PATCH', () => {
  const user = { userName: 'u', emails: [{ type: 'home', value: 'h@x' }] };
  it('leaves the input unchanged and applies ops in order', () => {
    const out = applyPatch(user, [{ op: 'Add', path: 'emails[type eq "work"].value', value: 'w@x' }, { op: 'REPLACE', path: 'emails[type eq "home"].value', value: 'h2@x' }], USER_PATCH_SCHEMA);
    expect(out.emails).toEqual([{ type: 'home', value: 'h2@x' }, { type: 'work', value: 'w@x' }]);
    expect(user.emails).toEqual([{ type: 'home', value: 'h@x' }]);
  });
  it('replace with no path merges a complex attribute and takes dotted and URN keys', () => {
    const out = applyPatch({ userName: 'u', name: { givenName: 'A', familyName: 'B' } }, [
      { op: 'replace', value: { name: { givenName: 'C' }, 'name.formatted': 'C B', 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User': { department: 'R&D' } } },
    ], USER_PATCH_SCHEMA);
    expect(out.name).toEqual({ givenName: 'C', familyName: 'B', formatted: 'C B' });
    expect(out['urn:ietf:params:scim:schemas:extension:enterprise:2.0:User']).toEqual({ department: 'R&D' });
  });
  it('members: add skips duplicates, remove by value array or by filter', () => {
    const g = { displayName: 'g', members: [{ value: '1' }] };
    const added = applyPatch(g, [{ op: 'add', path: 'members', value: [{ value: '1' }, { value: '2' }, { value: '3' }] }], GROUP_PATCH_SCHEMA);
    expect(added.members).toEqual([{ value: '1' }, { value: '2' }, { value: '3' }]);
    const removed = applyPatch(added, [{ op: 'Remove', path: 'members', value: [{ value: '2' }] }, { op: 'remove', path: 'members[value eq "3"]' }], GROUP_PATCH_SCHEMA);
    expect(removed.members).toEqual([{ value: '1' }]);
  });
  it('refuses what it cannot do, naming the operation', () => {
    expect(refusal(() => applyPatch(user, [{ op: 'add', path: 'userName', value: 'x' }, { op: 'move', path: 'userName' }], USER_PATCH_SCHEMA))).toMatchObject({ scimType: 'invalidSyntax', detail: expect.stringContaining('Operations[1]') });
    expect(refusal(() => applyPatch(user, [{ op: 'remove' }], USER_PATCH_SCHEMA))).toMatchObject({ scimType: 'noTarget' });
    expect(refusal(() => applyPatch(user, [{ op: 'replace', path: 'userName[type eq "x"]', value: 1 }], USER_PATCH_SCHEMA))).toMatchObject({ scimType: 'invalidPath' });
    expect(refusal(() => applyPatch(user, [{ op: 'replace', path: 'meta', value: {} }], USER_PATCH_SCHEMA))).toMatchObject({ scimType: 'mutability' });
    expect(refusal(() => applyPatch(user, [{ op: 'replace', path: 'emails[type co "w"].value', value: 'a@b' }], USER_PATCH_SCHEMA))).toMatchObject({ scimType: 'noTarget' });
  });
});

describe('resources', () => {
  it('a user: userName lower-cased, "True"/"False" booleans, the primary email', () => {
    const f = userFields({ userName: 'Ann@Example.com', active: 'False', emails: [{ value: 'a@x', primary: 'false' }, { value: 'b@x', primary: 'True' }] });
    expect(f).toMatchObject({ name: 'ann@example.com', active: false, email: 'b@x' });
    expect(refusal(() => userFields({ userName: 'x', active: 'yes' }))).toMatchObject({ scimType: 'invalidValue', detail: expect.stringContaining('"active"') });
  });
  it('policy group names', () => {
    expect(policyGroupName('Engineering')).toBe('group:Engineering');
    expect(policyGroupName('Platform Eng / EU')).toBe('group:Platform-Eng-EU');
  });
});
