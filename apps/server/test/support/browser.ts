/**
 * A browser as far as the sign-in pages care: a cookie jar and redirects followed by hand, so
 * tests see every hop (and every Set-Cookie) the way a browser would get them. It sends the
 * `Origin` and `Sec-Fetch-Site` headers a browser sends on a same-origin form post.
 */
export interface Hop { url: string; status: number; headers: Headers; body: string }

export class Browser {
  /** name -> value, for the server's host (the test provider sets no cookies). */
  readonly cookies = new Map<string, string>();
  readonly setCookies: string[] = [];

  /** `ip`: sent as X-Forwarded-For (for a server that trusts loopback as its proxy), so each browser has its own rate-limit budget. */
  constructor(private readonly origin: string, private readonly ip?: string) {}

  private remember(res: Response): void {
    for (const c of res.headers.getSetCookie()) {
      this.setCookies.push(c);
      const [pair, ...attrs] = c.split(';');
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq).trim();
      const value = pair!.slice(eq + 1).trim();
      if (attrs.some((a) => /^\s*max-age=0\s*$/i.test(a)) || value === '') this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }

  private cookieHeader(url: string): Record<string, string> {
    if (!url.startsWith(this.origin) || this.cookies.size === 0) return {};
    return { cookie: [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ') };
  }

  async request(method: string, url: string, opts: { form?: Record<string, string>; json?: unknown; headers?: Record<string, string> } = {}): Promise<Hop> {
    const full = new URL(url, this.origin).toString();
    const headers: Record<string, string> = { ...this.cookieHeader(full), ...(this.ip && full.startsWith(this.origin) ? { 'x-forwarded-for': this.ip } : {}) };
    let body: string | undefined;
    if (opts.form) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      body = new URLSearchParams(opts.form).toString();
    } else if (opts.json !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(opts.json);
    }
    if (method !== 'GET' && full.startsWith(this.origin)) Object.assign(headers, { origin: this.origin, 'sec-fetch-site': 'same-origin' });
    Object.assign(headers, opts.headers);
    const res = await fetch(full, { method, headers, body, redirect: 'manual' });
    if (full.startsWith(this.origin)) this.remember(res);
    return { url: full, status: res.status, headers: res.headers, body: await res.text() };
  }

  get(url: string, headers?: Record<string, string>): Promise<Hop> {
    return this.request('GET', url, { headers });
  }

  /** Follows redirects (as GETs) from `first`; returns every hop, the last one not a redirect. */
  async follow(first: Hop, max = 10): Promise<Hop[]> {
    const hops = [first];
    let hop = first;
    while (hop.status >= 300 && hop.status < 400 && hops.length <= max) {
      hop = await this.get(new URL(hop.headers.get('location')!, hop.url).toString());
      hops.push(hop);
    }
    return hops;
  }

  async navigate(url: string): Promise<Hop[]> {
    return this.follow(await this.get(url));
  }
}

/** The value of a hidden form field in an HTML page. */
export function hiddenField(html: string, name: string): string {
  const m = new RegExp(`name="${name}" value="([^"]*)"`).exec(html);
  if (!m) throw new Error(`no hidden field ${name} in the page:\n${html.slice(0, 2000)}`);
  return m[1]!;
}
