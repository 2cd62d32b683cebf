#!/usr/bin/env node
// weft-server: the Weft control server and its admin CLI. TypeScript source, loaded through tsx.
import { register } from 'tsx/esm/api';

register();
await import('../src/main.ts');
