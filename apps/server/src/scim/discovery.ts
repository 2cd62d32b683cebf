/** SCIM discovery (RFC 7644 4, RFC 7643 5-7): what this service provider supports, and its schemas. */
import { SCIM_MAX_PAGE } from '../tunables.js';
import { ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA, USER_SCHEMA } from './resources.js';

type Attr = Record<string, unknown>;

const attr = (name: string, type: string, o: Partial<{ multiValued: boolean; required: boolean; caseExact: boolean; mutability: string; returned: string; uniqueness: string; description: string; subAttributes: Attr[] }> = {}): Attr => ({
  name,
  type,
  multiValued: o.multiValued ?? false,
  description: o.description ?? name,
  required: o.required ?? false,
  caseExact: o.caseExact ?? false,
  mutability: o.mutability ?? 'readWrite',
  returned: o.returned ?? 'default',
  uniqueness: o.uniqueness ?? 'none',
  ...(o.subAttributes ? { subAttributes: o.subAttributes } : {}),
});

export function discovery(base: () => string) {
  const meta = (resourceType: string, path: string) => ({ resourceType, location: `${base()}/${path}` });
  const userAttrs: Attr[] = [
    attr('userName', 'string', { required: true, uniqueness: 'server', description: "The Weft user name: lower-cased, 1-64 of a-z 0-9 . _ @ -; cannot change" }),
    attr('name', 'complex', { subAttributes: ['formatted', 'familyName', 'givenName', 'middleName', 'honorificPrefix', 'honorificSuffix'].map((n) => attr(n, 'string')) }),
    attr('displayName', 'string'),
    attr('active', 'boolean', { description: 'false suspends the user (devices cut off, keys revoked, sessions ended); true resumes' }),
    attr('emails', 'complex', { multiValued: true, subAttributes: [attr('value', 'string'), attr('type', 'string'), attr('primary', 'boolean'), attr('display', 'string')] }),
    attr('externalId', 'string', { caseExact: true }),
    attr('groups', 'complex', { multiValued: true, mutability: 'readOnly', subAttributes: [attr('value', 'string', { mutability: 'readOnly' }), attr('display', 'string', { mutability: 'readOnly' }), attr('$ref', 'reference', { mutability: 'readOnly' })] }),
  ];
  const groupAttrs: Attr[] = [
    attr('displayName', 'string', { required: true, uniqueness: 'server', description: 'In the access policy as group:<displayName> (characters other than A-Z a-z 0-9 . _ - become "-")' }),
    attr('externalId', 'string', { caseExact: true }),
    attr('members', 'complex', { multiValued: true, subAttributes: [attr('value', 'string', { mutability: 'immutable' }), attr('display', 'string', { mutability: 'readOnly' }), attr('$ref', 'reference', { mutability: 'immutable' })] }),
  ];
  const enterpriseAttrs: Attr[] = ['employeeNumber', 'costCenter', 'organization', 'division', 'department'].map((n) => attr(n, 'string'));
  const schemas = [
    { schemas: ['urn:ietf:params:scim:schemas:core:2.0:Schema'], id: USER_SCHEMA, name: 'User', description: 'A Weft user', attributes: userAttrs, meta: meta('Schema', `Schemas/${USER_SCHEMA}`) },
    { schemas: ['urn:ietf:params:scim:schemas:core:2.0:Schema'], id: GROUP_SCHEMA, name: 'Group', description: 'A group of Weft users, usable in the access policy', attributes: groupAttrs, meta: meta('Schema', `Schemas/${GROUP_SCHEMA}`) },
    { schemas: ['urn:ietf:params:scim:schemas:core:2.0:Schema'], id: ENTERPRISE_USER_SCHEMA, name: 'EnterpriseUser', description: 'Kept as sent', attributes: enterpriseAttrs, meta: meta('Schema', `Schemas/${ENTERPRISE_USER_SCHEMA}`) },
  ];
  const resourceTypes = [
    { schemas: ['urn:ietf:params:scim:schemas:core:2.0:ResourceType'], id: 'User', name: 'User', endpoint: '/Users', schema: USER_SCHEMA, schemaExtensions: [{ schema: ENTERPRISE_USER_SCHEMA, required: false }], meta: meta('ResourceType', 'ResourceTypes/User') },
    { schemas: ['urn:ietf:params:scim:schemas:core:2.0:ResourceType'], id: 'Group', name: 'Group', endpoint: '/Groups', schema: GROUP_SCHEMA, meta: meta('ResourceType', 'ResourceTypes/Group') },
  ];
  return {
    get serviceProviderConfig() {
      return {
        schemas: ['urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig'],
        patch: { supported: true },
        bulk: { supported: false, maxOperations: 0, maxPayloadSize: 0 },
        filter: { supported: true, maxResults: SCIM_MAX_PAGE },
        changePassword: { supported: false },
        sort: { supported: false },
        etag: { supported: false },
        authenticationSchemes: [{ type: 'oauthbearertoken', name: 'SCIM token', description: 'A Weft SCIM token (weft-server scim token create) as Authorization: Bearer', primary: true }],
        meta: meta('ServiceProviderConfig', 'ServiceProviderConfig'),
      };
    },
    schemas,
    resourceTypes,
  };
}
