/** `weft-server settings get|set`: the tailnet settings as a person reads and types them. */
import type { TailnetSettings, TailnetSettingsPatch } from '@weft/protocol';
import { UsageError } from './args.js';

/** The CLI's names for the settings (the `settings` table keys, with dashes). */
const NAMES = { 'node-key-expiry-days': 'nodeKeyExpiryDays', 'device-approval-required': 'deviceApprovalRequired' } as const;

export function settingsText(s: TailnetSettings): string {
  return [
    `node-key-expiry-days      ${s.nodeKeyExpiryDays}`,
    `device-approval-required  ${s.deviceApprovalRequired ? 'on' : 'off'}`,
  ].join('\n');
}

/** One `set KEY VALUE` as the PATCH body. The range of a number is the server's to judge (it names it). */
export function settingsPatch(name: string, value: string): TailnetSettingsPatch {
  const field = (NAMES as Record<string, (typeof NAMES)[keyof typeof NAMES]>)[name];
  if (!field) throw new UsageError(`unknown setting "${name}" (settings: ${Object.keys(NAMES).join(', ')})`);
  if (field === 'nodeKeyExpiryDays') {
    const m = /^(\d+)d?$/.exec(value.trim());
    if (!m) throw new UsageError(`node-key-expiry-days takes a number of days (1-180), got "${value}"`);
    return { nodeKeyExpiryDays: Number(m[1]) };
  }
  const v = value.trim().toLowerCase();
  if (['on', 'true', 'yes'].includes(v)) return { deviceApprovalRequired: true };
  if (['off', 'false', 'no'].includes(v)) return { deviceApprovalRequired: false };
  throw new UsageError(`device-approval-required takes on or off, got "${value}"`);
}
