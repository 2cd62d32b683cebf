import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';

describe('server config', () => {
  const dirs: string[] = [];
  const tempDir = () => {
    const dir = mkdtempSync(join(tmpdir(), 'weft-cfg-'));
    dirs.push(dir);
    return dir;
  };
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it('layers file, env and flags, flags winning', () => {
    const dir = tempDir();
    const file = join(dir, 'weft.json');
    writeFileSync(file, JSON.stringify({ listen: '0.0.0.0:9000', logLevel: 'debug' }));
    const c = loadConfig(['--config', file, '--listen', '127.0.0.1:7000'], { WEFT_DATA_DIR: dir, WEFT_LOG_LEVEL: 'warn' });
    expect(c).toMatchObject({ listen: '127.0.0.1:7000', dataDir: dir, logLevel: 'warn' });
  });

  it('names the bad key and where it came from', () => {
    expect(() => loadConfig(['--listen', 'nope'], {})).toThrow(/"listen" \(flag --listen\)/);
    expect(() => loadConfig([], { WEFT_DATABASE_URL: 'mysql://x' })).toThrow(/"database-url" \(environment variable WEFT_DATABASE_URL\): must start with postgres/);
    const dir = tempDir();
    writeFileSync(join(dir, 'bad.json'), JSON.stringify({ lissen: 'x' }));
    expect(() => loadConfig(['--config', join(dir, 'bad.json')], {})).toThrow(/unknown key\(s\) "lissen"/);
    writeFileSync(join(dir, 'broken.json'), '{');
    expect(() => loadConfig(['--config', join(dir, 'broken.json')], {})).toThrow(/cannot read config file/);
    expect(() => loadConfig(['--port', '1'], {})).toThrow(/unknown flag --port/);
  });

  it('relay mesh: relayMeshUrl from file, WEFT_RELAY_MESH_URL or --relay-mesh-url; peers (file or WEFT_RELAY_MESH_PEERS) need it and the relay on', () => {
    const dir = tempDir();
    const file = join(dir, 'mesh.json');
    writeFileSync(file, JSON.stringify({ relayMeshUrl: 'http://10.0.0.11:8080', relayMeshPeers: ['http://10.0.0.12:8080'] }));
    expect(loadConfig(['--config', file], {})).toMatchObject({ relayMeshUrl: 'http://10.0.0.11:8080', relayMeshPeers: ['http://10.0.0.12:8080'] });
    expect(loadConfig(['--relay-mesh-url', 'http://10.0.0.13:8080'], {}).relayMeshUrl).toBe('http://10.0.0.13:8080');
    expect(loadConfig([], { WEFT_RELAY_MESH_URL: 'http://10.0.0.14:8080' }).relayMeshUrl).toBe('http://10.0.0.14:8080');
    expect(loadConfig([], {}).relayMeshPeers).toEqual([]);
    expect(loadConfig([], { WEFT_RELAY_MESH_URL: 'http://10.0.0.11:8080', WEFT_RELAY_MESH_PEERS: 'http://10.0.0.12:8080, http://10.0.0.13:8080' }).relayMeshPeers).toEqual(['http://10.0.0.12:8080', 'http://10.0.0.13:8080']);
    writeFileSync(file, JSON.stringify({ relayMeshPeers: ['http://10.0.0.12:8080'] }));
    expect(() => loadConfig(['--config', file], {})).toThrow(/relay-mesh-url.*is needed with relayMeshPeers/);
    expect(() => loadConfig(['--config', file, '--relay-mesh-url', 'http://10.0.0.11:8080', '--relay', 'off'], {})).toThrow(/needs the relay on/);
    writeFileSync(file, JSON.stringify({ relayMeshUrl: 'http://10.0.0.11:8080', relayMeshPeers: ['not a url'] }));
    expect(() => loadConfig(['--config', file], {})).toThrow(/must be a URL/);
  });

  it('log-format comes from the file, WEFT_LOG_FORMAT or --log-format, absent means decide by terminal', () => {
    expect(loadConfig([], {}).logFormat).toBeUndefined();
    expect(loadConfig([], { WEFT_LOG_FORMAT: 'json' }).logFormat).toBe('json');
    expect(loadConfig(['--log-format', 'pretty'], { WEFT_LOG_FORMAT: 'json' }).logFormat).toBe('pretty');
    expect(() => loadConfig([], { WEFT_LOG_FORMAT: 'yaml' })).toThrow(/"log-format" \(environment variable WEFT_LOG_FORMAT\)/);
    expect(() => loadConfig(['--log-format=text'], {})).toThrow(/"log-format" \(flag --log-format\)/);
  });

  it('stun-listen: default 0.0.0.0:3478, from file, WEFT_STUN_LISTEN or --stun-listen, off turns it off, a bad value names the key', () => {
    expect(loadConfig([], {}).stunListen).toBe('0.0.0.0:3478');
    expect(loadConfig([], { WEFT_STUN_LISTEN: '[::]:3478' }).stunListen).toBe('[::]:3478');
    expect(loadConfig(['--stun-listen', 'off'], { WEFT_STUN_LISTEN: '[::]:3478' }).stunListen).toBe('off');
    expect(loadConfig(['--stun-listen=127.0.0.1:0'], {}).stunListen).toBe('127.0.0.1:0');
    expect(() => loadConfig(['--stun-listen', '3478'], {})).toThrow(/"stun-listen" \(flag --stun-listen\): "3478" is not HOST:PORT .*, or off/);
    expect(() => loadConfig([], { WEFT_STUN_LISTEN: '0.0.0.0:70000' })).toThrow(/"stun-listen" \(environment variable WEFT_STUN_LISTEN\): .*port 70000 is above 65535/);
    expect(() => loadConfig(['--stun-listen', '::1:3478'], {})).toThrow(/"stun-listen" \(flag --stun-listen\)/);
  });

  it('relay: default on, from file, WEFT_RELAY or --relay, a bad value names the key and its source', () => {
    expect(loadConfig([], {}).relay).toBe('on');
    expect(loadConfig([], { WEFT_RELAY: 'off' }).relay).toBe('off');
    expect(loadConfig(['--relay', 'on'], { WEFT_RELAY: 'off' }).relay).toBe('on');
    expect(() => loadConfig(['--relay=no'], {})).toThrow(/"relay" \(flag --relay\): must be on or off/);
    expect(() => loadConfig([], { WEFT_RELAY: 'false' })).toThrow(/"relay" \(environment variable WEFT_RELAY\): must be on or off/);
  });

  it('metrics: --metrics-listen / WEFT_METRICS_LISTEN and WEFT_METRICS_TOKEN are validated, absent = off', () => {
    const none = loadConfig([], {});
    expect([none.metricsListen, none.metricsToken]).toEqual([undefined, undefined]);
    expect(loadConfig(['--metrics-listen', '127.0.0.1:9090'], {}).metricsListen).toBe('127.0.0.1:9090');
    expect(loadConfig([], { WEFT_METRICS_LISTEN: '[::1]:9090', WEFT_METRICS_TOKEN: 'a'.repeat(32) })).toMatchObject({ metricsListen: '[::1]:9090', metricsToken: 'a'.repeat(32) });
    expect(() => loadConfig(['--metrics-listen', '9090'], {})).toThrow(/"metrics-listen" \(flag --metrics-listen\): must be HOST:PORT/);
    expect(() => loadConfig(['--metrics-listen', '127.0.0.1:8080'], {})).toThrow(/"metrics-listen" \(flag --metrics-listen\): must differ from "listen"/);
    expect(() => loadConfig([], { WEFT_METRICS_TOKEN: 'short' })).toThrow(/"metrics-token" \(environment variable WEFT_METRICS_TOKEN\): must be at least 16/);
    expect(() => loadConfig([], { WEFT_METRICS_TOKEN: 'has a space in it, long enough' })).toThrow(/"metrics-token".*printable ASCII/);
    // The token is a secret: never echoed in the error.
    const message = (() => {
      try {
        loadConfig([], { WEFT_METRICS_TOKEN: 'x y secret-looking-value' });
        return 'accepted';
      } catch (err) {
        return (err as Error).message;
      }
    })();
    expect(message).toMatch(/"metrics-token"/);
    expect(message).not.toContain('secret-looking-value');
    expect(() => loadConfig(['--metrics-token', 'a'.repeat(32)], {})).toThrow(/unknown flag --metrics-token/);
  });

  it('deploy/server.example.json is a valid config', () => {
    const file = join(import.meta.dirname, '../../../../deploy/server.example.json');
    const c = loadConfig(['--config', file], {});
    expect(c.logFormat).toBe('json');
    expect(c.stunListen).toBe('0.0.0.0:3478');
  });
});
