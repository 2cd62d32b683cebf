import type { NodePrivateKey, NodePublicKey } from '@weft/crypto';

export const PRIV_1 = `privkey:${'11'.repeat(32)}` as NodePrivateKey;
export const PUB_1 = 'nodekey:7b4e909bbe7ffe44c465a220037d608ee35897d31ef972f07f74892cb0f73f13' as NodePublicKey;
export const PUB_1_B64 = 'e06Qm75//kTEZaIgA31gjuNYl9Me+XLwf3SJLLD3PxM=';
export const PRIV_1_B64 = 'ERERERERERERERERERERERERERERERERERERERERERE=';
export const PUB_2 = 'nodekey:0faa684ed28867b97f4a6a2dee5df8ce974e76b7018e3f22a1c4cf2678570f20' as NodePublicKey;
export const PUB_2_B64 = 'D6poTtKIZ7l/Smot7l34zpdOdrcBjj8iocTPJnhXDyA=';
export const PUB_3 = 'nodekey:7b0d47d93427f8311160781c7c733fd89f88970aef490d8aa0ee19a4cb8a1b14' as NodePublicKey;
export const PUB_3_B64 = 'ew1H2TQn+DERYHgcfHM/2J+IlwrvSQ2KoO4ZpMuKGxQ=';
export const hex = (k: string) => k.slice(k.indexOf(':') + 1);
