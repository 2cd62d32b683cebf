/**
 * One-time initialisation the join path would otherwise pay on the first `weft up`, done at
 * daemon start instead: @noble/curves builds its X25519/Ed25519 tables on first use (~100 ms
 * here), WebCrypto's Ed25519 and jose warm up on the first machine token (~20 ms), and Node loads
 * its fetch implementation on the first call (~55 ms). Throwaway keys only; nothing is stored.
 */
import { generateMachineKey, generateNodeKey, signMachineToken } from '@weft/crypto';

export async function warmUp(): Promise<void> {
  generateNodeKey();
  await signMachineToken(generateMachineKey().privateKey);
  // A data: URL loads fetch without touching the network.
  await (await fetch('data:,')).text();
}
