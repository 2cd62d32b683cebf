/**
 * The relay/STUN regions a netmap lists (NetmapMessage.regions): the embedded STUN service as
 * region EMBEDDED_REGION_ID, advertised at the host name the agent itself used to reach this
 * server (so one server behind a name, an address, or a proxy is advertised the way each agent
 * can reach it), then the regions from the `regions` config key (standalone `weft-relay`s).
 */
import { Region, type Region as RegionT } from '@weft/protocol';

/** The embedded STUN service's region id; configured regions use other ids. */
export const EMBEDDED_REGION_ID = 1;
export const EMBEDDED_REGION = { id: EMBEDDED_REGION_ID, code: 'embedded', name: 'this server' } as const;

export interface RegionOptions {
  /** UDP port the embedded STUN service listens on; null = STUN off (no embedded region). */
  embeddedStunPort: number | null;
  /** Regions from the config, validated (config.ts). */
  extra: RegionT[];
}

export class Regions {
  private readonly extraJson: string[];

  constructor(private readonly opts: RegionOptions) {
    this.extraJson = [...opts.extra].sort((a, b) => a.id - b.id).map((r) => JSON.stringify(r));
  }

  /**
   * The `regions` array as JSON for an agent that connected with Host `hostname` (port already
   * removed), or undefined when there is nothing to list. A Host header that is no valid STUN host
   * (it is the client's to choose) leaves the embedded region out rather than send an invalid entry.
   */
  jsonFor(hostname: string | undefined): string | undefined {
    const parts: string[] = [];
    if (this.opts.embeddedStunPort !== null && hostname) {
      const host = hostname.includes(':') && !hostname.startsWith('[') ? `[${hostname}]` : hostname;
      const region = { ...EMBEDDED_REGION, stun: [`${host}:${this.opts.embeddedStunPort}`] };
      if (Region.safeParse(region).success) parts.push(JSON.stringify(region));
    }
    parts.push(...this.extraJson);
    return parts.length === 0 ? undefined : `[${parts.join(',')}]`;
  }
}
