/**
 * A stand-in for a weft daemon in userspace.test.ts: opens a userspace WireGuard device, applies
 * the config and peers given as JSON in argv[2], prints `READY <wireguard-go pid>` and holds on
 * until killed, so the test can kill it with -9 and leave its wireguard-go orphaned.
 */
import { openUserspace } from '@weft/wg';
import type { InterfaceConfig, PeerConfig } from '@weft/wg';

const { name, netns, config, peers } = JSON.parse(process.argv[2]!) as { name: string; netns: string; config: InterfaceConfig; peers: PeerConfig[] };
const dev = await openUserspace({ name, backend: 'userspace', netns });
await dev.configure(config);
await dev.setPeers(peers);
process.stdout.write(`READY ${dev.pid}\n`);
setInterval(() => undefined, 60_000);
