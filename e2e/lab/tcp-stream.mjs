// A long-lived TCP connection for lab tests: node tcp-stream.mjs HOST PORT. Sends a line every
// 100 ms and prints "echo N AT_MS" for each echo that comes back (AT_MS: Date.now()), so a test
// sees when an open connection stops carrying data. Runs until killed.
import { connect } from 'node:net';
const [host, port] = process.argv.slice(2);
const s = connect({ host, port: Number(port) });
let n = 0;
s.on('connect', () => {
  console.log('connected');
  setInterval(() => s.write(`${++n}\n`), 100);
});
s.on('data', (d) => {
  for (const line of d.toString().split('\n')) if (line) console.log(`echo ${line} ${Date.now()}`);
});
s.on('error', (e) => console.log(`error ${e.code ?? e.message}`));
s.on('close', () => console.log('closed'));
