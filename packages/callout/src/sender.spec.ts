import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { CalloutSender } from './sender';
import { guardedLookup, type Resolver, TARGET_REFUSED } from './target-url';

/** A resolver with fixed answers instead of DNS. */
function fixedResolver(table: Record<string, string[]>): Resolver {
  return (hostname, _options, callback) => {
    const addresses = table[hostname];
    if (!addresses) {
      const err: NodeJS.ErrnoException = new Error(`getaddrinfo ENOTFOUND ${hostname}`);
      err.code = 'ENOTFOUND';
      return callback(err, []);
    }
    callback(
      null,
      addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 })),
    );
  };
}

describe('CalloutSender target policy at send time (SSRF guard)', () => {
  let server: http.Server;
  let port: number;
  let hits = 0;

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      hits++;
      req.resume();
      req.on('end', () => res.writeHead(202).end());
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });

  afterAll(async () => {
    await new Promise<void>((r) => server.close(() => r()));
  });

  const call = (url: string) => ({ url, body: { a: 1 }, timeoutMs: 2_000, webhookId: 'w-1' });

  it('refuses a host name that resolves to a cloud metadata address, without connecting, and says why', async () => {
    const sender = new CalloutSender({
      targets: { production: false, allowedHosts: [] },
      resolve: fixedResolver({ 'innocent.example': ['169.254.169.254'] }),
    });
    try {
      const before = hits;
      const res = await sender.send(call(`http://innocent.example:${port}/hook`));
      expect(res.refused).toBe(true);
      expect(res.httpStatus).toBeUndefined();
      expect(res.error).toBe(
        'target refused: innocent.example resolves to 169.254.169.254, a cloud metadata address, which is never called',
      );
      expect(hits).toBe(before);
    } finally {
      await sender.close();
    }
  });

  it('in production refuses a name resolving to a loopback address unless the host is allow-listed', async () => {
    const resolve = fixedResolver({ 'hooks.internal': ['127.0.0.1'] });
    const strict = new CalloutSender({ targets: { production: true, allowedHosts: [] }, resolve });
    const listed = new CalloutSender({ targets: { production: true, allowedHosts: ['hooks.internal'] }, resolve });
    try {
      // https, so the literal rule (production callouts use https) lets it through to the lookup.
      const refused = await strict.send(call(`https://hooks.internal:${port}/hook`));
      expect(refused.refused).toBe(true);
      expect(refused.error).toMatch(
        /hooks\.internal resolves to 127\.0\.0\.1, a loopback address; .*CALLOUT_ALLOWED_HOSTS/,
      );

      const before = hits;
      const ok = await listed.send(call(`http://hooks.internal:${port}/hook`));
      expect(ok).toMatchObject({ httpStatus: 202 });
      expect(ok.refused).toBeUndefined();
      expect(hits).toBe(before + 1);
    } finally {
      await strict.close();
      await listed.close();
    }
  });

  it('checks the literal host at send time too (a policy that changed after the extension was saved)', async () => {
    const sender = new CalloutSender({ targets: { production: true, allowedHosts: [] } });
    try {
      const res = await sender.send(call(`http://127.0.0.1:${port}/hook`));
      expect(res).toMatchObject({ refused: true });
      expect(res.error).toMatch(/127\.0\.0\.1 is a loopback address/);
    } finally {
      await sender.close();
    }
  });

  it('refuses another spelling of a loopback address in production without connecting (no lookup happens for a literal)', async () => {
    const sender = new CalloutSender({ targets: { production: true, allowedHosts: [] } });
    try {
      const before = hits;
      for (const host of [
        '[::ffff:127.0.0.1]',
        '[::ffff:7f00:1]',
        '[::127.0.0.1]',
        '2130706433',
        '0x7f000001',
        '127.1',
      ]) {
        const res = await sender.send(call(`https://${host}:${port}/hook`));
        expect({ host, refused: res.refused }).toEqual({ host, refused: true });
        expect(res.error).toMatch(/127\.0\.0\.1.*a loopback address/);
      }
      expect(hits).toBe(before);
    } finally {
      await sender.close();
    }
  });

  it('outside production, loopback targets are called (local development and tests)', async () => {
    const sender = new CalloutSender({ targets: { production: false, allowedHosts: [] } });
    try {
      await expect(sender.send(call(`http://127.0.0.1:${port}/hook`))).resolves.toMatchObject({ httpStatus: 202 });
    } finally {
      await sender.close();
    }
  });
});

describe('guardedLookup', () => {
  const lookup = guardedLookup(
    { production: true, allowedHosts: [] },
    fixedResolver({ 'mixed.example': ['93.184.216.34', '10.0.0.7'], 'public.example': ['93.184.216.34'] }),
  );

  it('refuses when any of the addresses is not allowed', (done) => {
    lookup('mixed.example', { all: true }, (err) => {
      expect(err?.code).toBe(TARGET_REFUSED);
      expect(err?.message).toMatch(/10\.0\.0\.7, a private address/);
      done();
    });
  });

  it('answers in the form asked for: all addresses, or the first with its family', (done) => {
    lookup('public.example', { all: true }, (err, addresses) => {
      expect(err).toBeNull();
      expect(addresses).toEqual([{ address: '93.184.216.34', family: 4 }]);
      lookup('public.example', {}, (err2, address, family) => {
        expect(err2).toBeNull();
        expect([address, family]).toEqual(['93.184.216.34', 4]);
        done();
      });
    });
  });

  it('judges an IPv4-mapped answer as the IPv4 address it carries', (done) => {
    guardedLookup({ production: false, allowedHosts: [] }, fixedResolver({ 'mapped.example': ['::ffff:a9fe:a9fe'] }))(
      'mapped.example',
      {},
      (err) => {
        expect(err?.code).toBe(TARGET_REFUSED);
        expect(err?.message).toBe(
          'mapped.example resolves to ::ffff:a9fe:a9fe, 169.254.169.254 (IPv4-mapped), a cloud metadata address, which is never called',
        );
        done();
      },
    );
  });

  it('passes resolution errors through', (done) => {
    lookup('nowhere.example', {}, (err) => {
      expect(err?.code).toBe('ENOTFOUND');
      done();
    });
  });
});

describe('CalloutSender: the GET form of the verification challenge', () => {
  let server: http.Server;
  let port: number;
  const seen: Array<{ method: string; headers: http.IncomingHttpHeaders; body: string }> = [];

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        seen.push({ method: req.method ?? '', headers: req.headers, body: Buffer.concat(chunks).toString() });
        res
          .writeHead(200, { 'content-type': 'application/json' })
          .end(JSON.stringify({ verification: 'v'.repeat(200) }));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });

  afterAll(async () => {
    await new Promise<void>((r) => server.close(() => r()));
  });

  it('sends no body and no content-type, signs the empty body, and keeps the answer up to the bound', async () => {
    const sender = new CalloutSender();
    try {
      const key = Buffer.alloc(32, 7);
      const res = await sender.send({
        url: `http://127.0.0.1:${port}/hook`,
        method: 'GET',
        headers: { 'x-entitle-verification-challenge': 'abc' },
        captureResponseBytes: 20,
        timeoutMs: 2_000,
        webhookId: 'w-get',
        signingKeys: [{ id: 'k1', scheme: 'v1', createdAt: new Date(), key }],
      });
      expect(res.httpStatus).toBe(200);
      expect(res.responseBodyExcerpt).toBe('{"verification":"vvv');
      const got = seen.at(-1)!;
      expect(got).toMatchObject({ method: 'GET', body: '' });
      expect(got.headers['content-type']).toBeUndefined();
      expect(got.headers['x-entitle-verification-challenge']).toBe('abc');
      const { createHmac } = await import('node:crypto');
      const expected = createHmac('sha256', key)
        .update(`w-get.${String(got.headers['webhook-timestamp'])}.`)
        .digest('base64');
      expect(got.headers['webhook-signature']).toBe(`v1,${expected}`);
    } finally {
      await sender.close();
    }
  });
});
