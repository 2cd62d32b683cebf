// TCP echo listeners for lab tests: node tcp-echo.mjs PORT... (all addresses). Prints "listening".
import { createServer } from 'node:net';
const ports = process.argv.slice(2).map(Number);
let up = 0;
for (const port of ports) {
  createServer((s) => {
    s.on('data', (d) => s.write(d));
    s.on('error', () => {});
  }).listen(port, '::', () => {
    if (++up === ports.length) console.log(`listening ${ports.join(',')}`);
  });
}
