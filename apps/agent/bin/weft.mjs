#!/usr/bin/env node
// Runs the TypeScript sources through tsx, so `weft` works from any cwd by absolute path.
import { register } from 'tsx/esm/api';

register();
await import('../src/main.ts');
