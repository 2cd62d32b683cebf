import { describe, expect, it } from 'vitest';
import { userNameFrom } from '../../src/state/identities.js';
import { groupsOf } from '../../src/web/oidc.js';
import { localPath } from '../../src/web/sign-in-routes.js';
import { csrfTokenFor } from '../../src/web/csrf.js';

describe('web sign-in pieces', () => {
  it('the groups claim: plain, namespaced (a name with dots and slashes), or a dotted path; strings only, sorted, deduplicated', () => {
    const claims = { groups: ['b', 'a', 'a', 7], 'https://example.com/groups': ['eng'], realm_access: { roles: ['admin'] }, single: 'one' };
    expect(groupsOf(claims, 'groups')).toEqual(['a', 'b']);
    expect(groupsOf(claims, 'https://example.com/groups')).toEqual(['eng']);
    expect(groupsOf(claims, 'realm_access.roles')).toEqual(['admin']);
    expect(groupsOf(claims, 'single')).toEqual(['one']);
    expect(groupsOf(claims, 'missing')).toEqual([]);
  });

  it('after sign-in only a path on this server is followed (no open redirect)', () => {
    expect(localPath('/login/ABCD-EFGH')).toBe('/login/ABCD-EFGH');
    for (const bad of ['//evil.example/x', '/\\evil.example', 'https://evil.example/', 'javascript:alert(1)', '/a b', undefined, 7]) {
      expect(localPath(bad), String(bad)).toBe('/auth/login');
    }
  });

  it('user names from what the provider calls the person fit the user-name rules', () => {
    expect(userNameFrom({ preferredName: 'Ada.Lovelace', email: null })).toBe('ada.lovelace');
    expect(userNameFrom({ preferredName: null, email: 'Grace Hopper@example.com' })).toBe('grace-hopper');
    expect(userNameFrom({ preferredName: '---', email: null })).toBe('user');
    expect(userNameFrom({ preferredName: 'x'.repeat(100), email: null })).toHaveLength(58);
  });

  it('the CSRF token is bound to the session and does not reveal it', () => {
    const a = csrfTokenFor('a'.repeat(43));
    expect(a).toBe(csrfTokenFor('a'.repeat(43)));
    expect(a).not.toBe(csrfTokenFor('b'.repeat(43)));
    expect(a).not.toContain('aaaa');
  });
});
