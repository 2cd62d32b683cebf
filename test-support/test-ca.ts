/**
 * A certificate authority made by the test, with Debian's openssl: a CA, and leaf certificates it
 * signs for chosen names and validity windows (including ones already expired). EC P-256 keys, so
 * making a few is quick. Everything lives in `dir`; the caller removes it.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface TestCa {
  name: string;
  /** PEM file of the CA certificate: what an agent passes as --ca-file. */
  certFile: string;
  keyFile: string;
  pem: string;
  /** The `openssl ca` config (its index and serial live beside it). */
  config: string;
}

export interface Leaf {
  certFile: string;
  keyFile: string;
  cert: Buffer;
  key: Buffer;
}

const openssl = (args: string[], cwd: string) => execFileSync('openssl', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });

export function makeCa(dir: string, name: string): TestCa {
  const d = join(dir, name);
  mkdirSync(join(d, 'issued'), { recursive: true });
  writeFileSync(join(d, 'index.txt'), '');
  writeFileSync(join(d, 'serial'), '1000\n');
  writeFileSync(join(d, 'ca.cnf'), [
    '[ca]', 'default_ca = test', '[test]', `dir = ${d}`, 'database = $dir/index.txt', 'new_certs_dir = $dir/issued',
    'serial = $dir/serial', 'default_md = sha256', 'policy = any', 'unique_subject = no', 'copy_extensions = none',
    '[any]', 'commonName = supplied',
  ].join('\n') + '\n');
  openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', 'ca.key'], d);
  openssl(['req', '-x509', '-new', '-key', 'ca.key', '-subj', `/CN=${name}`, '-days', '30', '-out', 'ca.pem',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], d);
  return { name, certFile: join(d, 'ca.pem'), keyFile: join(d, 'ca.key'), pem: readFileSync(join(d, 'ca.pem'), 'utf8'), config: join(d, 'ca.cnf') };
}

let issued = 0;

/**
 * A leaf for `names` (DNS names or IP addresses, the first also the CN), valid from `notBefore`
 * to `notAfter` (default: an hour ago to 30 days on). Written to `dir/<label>.pem` and `.key`.
 */
export function issue(ca: TestCa, dir: string, label: string, names: string[], validity: { notBefore?: Date; notAfter?: Date } = {}): Leaf {
  const n = ++issued;
  const key = join(dir, `${label}.key`);
  const csr = join(dir, `${label}-${n}.csr`);
  const ext = join(dir, `${label}-${n}.ext`);
  const cert = join(dir, `${label}.pem`);
  const san = names.map((x) => (/^[\d.]+$|:/.test(x) ? `IP:${x}` : `DNS:${x}`)).join(',');
  writeFileSync(ext, `[leaf]\nsubjectAltName = ${san}\nbasicConstraints = CA:FALSE\nextendedKeyUsage = serverAuth\n`);
  openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', key], dir);
  openssl(['req', '-new', '-key', key, '-subj', `/CN=${names[0]}`, '-out', csr], dir);
  const notBefore = validity.notBefore ?? new Date(Date.now() - 3600_000);
  const notAfter = validity.notAfter ?? new Date(Date.now() + 30 * 86400_000);
  openssl(['ca', '-batch', '-config', ca.config, '-cert', ca.certFile, '-keyfile', ca.keyFile, '-in', csr, '-out', cert,
    '-notext', '-extfile', ext, '-extensions', 'leaf', '-startdate', asn1Time(notBefore), '-enddate', asn1Time(notAfter)], dir);
  return { certFile: cert, keyFile: key, cert: readFileSync(cert), key: readFileSync(key) };
}

/** YYYYMMDDHHMMSSZ, as `openssl ca -startdate/-enddate` takes it. */
function asn1Time(d: Date): string {
  return d.toISOString().replace(/[-:T]/g, '').replace(/\.\d+Z$/, 'Z');
}
