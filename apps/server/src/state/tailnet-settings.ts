/**
 * Tailnet settings an admin changes at run time (`GET/PATCH /api/v1/settings`, `weft-server settings`),
 * one row each in `settings`. Absent row = the default. Read from the database at each use, so
 * every replica follows a change at once; every change is audited with its before and after.
 */
import { TailnetSettings as SettingsSchema, type TailnetSettings, type TailnetSettingsPatch } from '@weft/protocol';
import { audit, type Actor, type StateContext, type Tx } from './context.js';

/** The `settings` keys, and what an absent row means. */
export const SETTING_KEYS = {
  nodeKeyExpiryDays: 'node_key_expiry_days',
  deviceApprovalRequired: 'device_approval_required',
} as const satisfies Record<keyof TailnetSettings, string>;

export const DEFAULT_SETTINGS: TailnetSettings = { nodeKeyExpiryDays: 180, deviceApprovalRequired: false };

const DAY_MS = 86_400_000;

export class TailnetSettingsStore {
  constructor(private readonly ctx: StateContext) {}

  async get(db: Tx | StateContext['prisma'] = this.ctx.prisma): Promise<TailnetSettings> {
    const rows = await db.setting.findMany({ where: { key: { in: Object.values(SETTING_KEYS) } } });
    const byKey = new Map(rows.map((r) => [r.key, r.value]));
    const raw: Record<string, unknown> = {};
    for (const [field, key] of Object.entries(SETTING_KEYS)) {
      const v = byKey.get(key);
      if (v !== undefined) raw[field] = JSON.parse(v) as unknown;
    }
    // A stored value outside the schema (edited by hand) falls back to the default for that field only.
    const out = { ...DEFAULT_SETTINGS };
    for (const field of Object.keys(SETTING_KEYS) as (keyof TailnetSettings)[]) {
      const one = SettingsSchema.shape[field].safeParse(raw[field]);
      if (raw[field] !== undefined && one.success) (out as Record<string, unknown>)[field] = one.data;
    }
    return out;
  }

  /** Applies `patch` (already validated by the route's schema); audited once with before and after. */
  async update(actor: Actor, patch: TailnetSettingsPatch): Promise<TailnetSettings> {
    return this.ctx.prisma.$transaction(async (tx) => {
      // Serialises concurrent updates so each audit event's `before` is what it replaced.
      await tx.$executeRawUnsafe(`SELECT pg_advisory_xact_lock(${SETTINGS_LOCK})`);
      const before = await this.get(tx);
      for (const [field, value] of Object.entries(patch) as [keyof TailnetSettings, unknown][]) {
        if (value === undefined) continue;
        const key = SETTING_KEYS[field];
        await tx.setting.upsert({ where: { key }, create: { key, value: JSON.stringify(value) }, update: { value: JSON.stringify(value) } });
      }
      const after = await this.get(tx);
      await audit(tx, actor, 'settings.update', 'settings', undefined, { before: { ...before }, after: { ...after } });
      return after;
    });
  }

  /** When a node joining or renewing now stops being valid, under the current default. */
  async expiryFromNow(db: Tx | StateContext['prisma'] = this.ctx.prisma, now = Date.now()): Promise<Date> {
    return new Date(now + (await this.get(db)).nodeKeyExpiryDays * DAY_MS);
  }
}

/** Arbitrary constant naming the settings write lock in pg_advisory_xact_lock. */
const SETTINGS_LOCK = 0x77656673;

export { DAY_MS };
