/** `openDevice`: picks kernel WireGuard when this host has it, wireguard-go otherwise. */
import { existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import type { Backend, Device, OpenOptions } from './device.js';
import { WgError } from './errors.js';
import { runner } from './exec.js';
import { KernelDriver, kernelLinkAddCommand } from './kernel.js';
import type { Log } from './managed-device.js';
import { ManagedDevice } from './managed-device.js';
import { checkInterfaceName, openUserspace } from './userspace.js';

/**
 * Whether `ip link add ... type wireguard` works here: the module is loaded, or a probe link can
 * be created (which also autoloads the module) and is deleted again.
 */
export async function kernelWireGuardAvailable(netns?: string): Promise<boolean> {
  if (existsSync('/sys/module/wireguard')) return true;
  const run = runner(netns);
  const probe = `wgprobe${randomBytes(3).toString('hex')}`;
  try {
    await run(kernelLinkAddCommand(probe));
  } catch {
    return false;
  }
  await run(['ip', 'link', 'del', 'dev', probe]).catch(() => undefined);
  return true;
}

export async function chooseBackend(opts: Pick<OpenOptions, 'backend' | 'netns'>): Promise<Backend> {
  if (opts.backend !== 'auto') return opts.backend;
  return (await kernelWireGuardAvailable(opts.netns)) ? 'kernel' : 'userspace';
}

/**
 * Opens (creating if needed) the WireGuard interface `opts.name`. The interface exists when this
 * resolves; call `configure` then `setPeers`.
 */
export async function openDevice(opts: OpenOptions): Promise<Device> {
  checkInterfaceName(opts.name);
  const log: Log = opts.log ?? (() => undefined);
  const backend = await chooseBackend(opts);
  log('info', 'opening wireguard device', { name: opts.name, backend, requested: opts.backend });
  if (backend === 'userspace') return openUserspace(opts);
  if (opts.backend === 'kernel' && !(await kernelWireGuardAvailable(opts.netns))) {
    throw new WgError('kernel_unavailable', 'kernel WireGuard is not available on this host (modprobe wireguard), use backend "userspace"');
  }
  const device = new ManagedDevice(new KernelDriver(opts.name, opts.netns), log);
  await device.recover();
  return device;
}
