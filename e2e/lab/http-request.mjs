// One HTTP request from inside a lab namespace (run with `ip netns exec NS node http-request.mjs`).
// Plain JS so it starts without tsx; Node's fetch, so the lab needs no curl.
// argv: METHOD URL TIMEOUT_MS. Body (JSON) on stdin, empty = none. Authorization header from the
// env var WEFT_LAB_AUTH (not argv, which `ps` shows); more headers as a JSON object in
// WEFT_LAB_HEADERS. Prints {"status":N,"text":"...","etag":...,"sentAt":MS,"receivedAt":MS}
// (Date.now() just before the request and once the whole response was read, so a test can time
// from the call itself, not from this process starting or exiting); exit 2 and the reason on
// stderr when no response came back.
const [method, url, timeoutMs] = process.argv.slice(2);
let body = '';
for await (const chunk of process.stdin) body += chunk;
const headers = {};
if (process.env.WEFT_LAB_AUTH) headers.authorization = process.env.WEFT_LAB_AUTH;
if (body !== '') headers['content-type'] = 'application/json';
if (process.env.WEFT_LAB_HEADERS) Object.assign(headers, JSON.parse(process.env.WEFT_LAB_HEADERS));
try {
  const sentAt = Date.now();
  const res = await fetch(url, { method, headers, body: body === '' ? undefined : body, signal: AbortSignal.timeout(Number(timeoutMs)) });
  const text = await res.text();
  process.stdout.write(JSON.stringify({ status: res.status, text, etag: res.headers.get('etag'), sentAt, receivedAt: Date.now() }));
} catch (err) {
  process.stderr.write(`${method} ${url}: ${err?.cause?.message ?? err?.message ?? String(err)}\n`);
  process.exit(2);
}
