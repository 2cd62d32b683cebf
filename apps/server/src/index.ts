/**
 * @weft/server — `weft-server`: the control server (Fastify app from `buildApp`, REST API under
 * /api/v1, the agent channel at /agent/v1, the one write path in `state/`, the mapper that turns
 * changes into netmaps and deltas, the change hub between replicas) and its admin CLI.
 *
 * Imports: @weft/protocol, @weft/crypto, @weft/db, and @weft/wg for config export only.
 * Must not import: @weft/agent. `main.ts` is the only file that reads the process environment,
 * listens and handles signals.
 */
export { buildApp, type App, type AppOptions } from './app.js';
export { loadConfig, ServerConfig, ConfigError } from './config.js';
export { Errors, ApiError } from './errors.js';
