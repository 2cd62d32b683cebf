// One TCP round trip for lab tests: node tcp-probe.mjs HOST PORT TIMEOUT_MS. Exit 0 when the
// echo came back, 1 when refused or timed out (the reason on stdout).
import { connect } from 'node:net';
const [host, port, timeoutMs] = process.argv.slice(2);
const s = connect({ host, port: Number(port) });
const t = setTimeout(() => {
  console.log('timeout');
  process.exit(1);
}, Number(timeoutMs));
s.on('connect', () => s.write('probe\n'));
s.on('data', () => {
  clearTimeout(t);
  console.log('echo');
  process.exit(0);
});
s.on('error', (e) => {
  console.log(`error ${e.code ?? e.message}`);
  process.exit(1);
});
