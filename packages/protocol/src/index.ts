/**
 * @weft/protocol — every wire type: agent<->server messages and REST bodies, as zod schemas with
 * inferred types, documented field by field. Imports nothing from this repository.
 */
export * from './version.js';
export * from './fields.js';
export * from './common.js';
export * from './rest.js';
export * from './agent.js';
