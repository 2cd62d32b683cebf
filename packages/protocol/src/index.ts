/**
 * @weft/protocol — every wire type: agent<->server messages and REST bodies, as zod schemas with
 * inferred types, documented field by field, and the one helper that makes their text safe for a
 * terminal. Imports nothing from this repository.
 */
export * from './version.js';
export * from './address.js';
export * from './fields.js';
export * from './common.js';
export * from './issue.js';
export * from './rest.js';
export * from './agent.js';
export * from './terminal-text.js';
export * from './tags.js';
