import {
  type AddressKind,
  classifyHost,
  parseIpv4,
  parseIpv6,
  refuseResolvedAddress,
  refuseTargetUrl,
} from './target-url';

const DEV = { production: false, allowedHosts: [] };
const PROD = { production: true, allowedHosts: [] };

/**
 * Every spelling of an address is judged as the address it is. Each row: the host as written in a
 * URL (brackets for IPv6), what it normalises to, and its kind.
 */
const HOSTS: Array<[written: string, normalised: string, kind: AddressKind]> = [
  // The cloud metadata address in every form
  ['169.254.169.254', '169.254.169.254', 'metadata'],
  ['[::ffff:169.254.169.254]', '::ffff:a9fe:a9fe', 'metadata'],
  ['[::ffff:a9fe:a9fe]', '::ffff:a9fe:a9fe', 'metadata'],
  ['[0:0:0:0:0:ffff:a9fe:a9fe]', '::ffff:a9fe:a9fe', 'metadata'],
  ['[0000:0000:0000:0000:0000:FFFF:169.254.169.254]', '::ffff:a9fe:a9fe', 'metadata'],
  ['[::169.254.169.254]', '::a9fe:a9fe', 'metadata'],
  ['[::a9fe:a9fe]', '::a9fe:a9fe', 'metadata'],
  ['[::ffff:0:a9fe:a9fe]', '::ffff:0:a9fe:a9fe', 'metadata'],
  ['[64:ff9b::169.254.169.254]', '64:ff9b::a9fe:a9fe', 'metadata'],
  ['[64:ff9b:1::a9fe:a9fe]', '64:ff9b:1::a9fe:a9fe', 'metadata'],
  ['[64:ff9b:1:a9fe:a9:fe00::]', '64:ff9b:1:a9fe:a9:fe00::', 'metadata'], // RFC 6052 /48 layout
  ['[2002:a9fe:a9fe::1]', '2002:a9fe:a9fe::1', 'metadata'],
  ['[2001:0:4136:e378:8000:63bf:5601:5601]', '2001:0:4136:e378:8000:63bf:5601:5601', 'metadata'], // Teredo client
  ['2852039166', '169.254.169.254', 'metadata'],
  ['0xa9fea9fe', '169.254.169.254', 'metadata'],
  ['0251.0376.0251.0376', '169.254.169.254', 'metadata'],
  ['169.254.43518', '169.254.169.254', 'metadata'],
  ['169.254.169.254.', '169.254.169.254', 'metadata'],
  ['metadata.google.internal', 'metadata.google.internal', 'metadata'],
  ['metadata.google.internal.', 'metadata.google.internal', 'metadata'],
  ['METADATA.GOOGLE.INTERNAL', 'metadata.google.internal', 'metadata'],
  ['169.254.170.2', '169.254.170.2', 'metadata'],
  ['100.100.100.200', '100.100.100.200', 'metadata'],
  ['168.63.129.16', '168.63.129.16', 'metadata'],
  ['[fd00:ec2::254]', 'fd00:ec2::254', 'metadata'],
  ['[fd00:0ec2:0:0:0:0:0:0254]', 'fd00:ec2::254', 'metadata'],
  // Link-local
  ['169.254.1.1', '169.254.1.1', 'linkLocal'],
  ['[fe80::1]', 'fe80::1', 'linkLocal'],
  ['[fe80::1%25eth0]', 'fe80::1', 'linkLocal'],
  ['fe80::1%eth0', 'fe80::1', 'linkLocal'],
  ['[febf:ffff::1]', 'febf:ffff::1', 'linkLocal'],
  ['[::ffff:169.254.1.1]', '::ffff:a9fe:101', 'linkLocal'],
  // Loopback in every form
  ['127.0.0.1', '127.0.0.1', 'loopback'],
  ['127.1', '127.0.0.1', 'loopback'],
  ['2130706433', '127.0.0.1', 'loopback'],
  ['0x7f000001', '127.0.0.1', 'loopback'],
  ['0x7f.1', '127.0.0.1', 'loopback'],
  ['0177.0.0.1', '127.0.0.1', 'loopback'],
  ['017700000001', '127.0.0.1', 'loopback'],
  ['127.0.0.1.', '127.0.0.1', 'loopback'],
  ['127.255.255.254', '127.255.255.254', 'loopback'],
  ['[::1]', '::1', 'loopback'],
  ['[0:0:0:0:0:0:0:1]', '::1', 'loopback'],
  ['[0000:0000:0000:0000:0000:0000:0000:0001]', '::1', 'loopback'],
  ['[::ffff:127.0.0.1]', '::ffff:7f00:1', 'loopback'],
  ['[::ffff:7f00:1]', '::ffff:7f00:1', 'loopback'],
  ['[::127.0.0.1]', '::7f00:1', 'loopback'],
  ['[64:ff9b::7f00:1]', '64:ff9b::7f00:1', 'loopback'],
  ['[2002:7f00:1::]', '2002:7f00:1::', 'loopback'],
  ['localhost', 'localhost', 'loopback'],
  ['localhost.', 'localhost', 'loopback'],
  ['LocalHost', 'localhost', 'loopback'],
  ['hooks.localhost', 'hooks.localhost', 'loopback'],
  // Unspecified, broadcast, multicast
  ['0.0.0.0', '0.0.0.0', 'unspecified'],
  ['0', '0.0.0.0', 'unspecified'],
  ['0.1.2.3', '0.1.2.3', 'unspecified'],
  ['[::]', '::', 'unspecified'],
  ['[0:0:0:0:0:0:0:0]', '::', 'unspecified'],
  ['[::ffff:0.0.0.0]', '::ffff:0:0', 'unspecified'],
  ['255.255.255.255', '255.255.255.255', 'broadcast'],
  ['0xffffffff', '255.255.255.255', 'broadcast'],
  ['224.0.0.1', '224.0.0.1', 'multicast'],
  ['239.255.255.250', '239.255.255.250', 'multicast'],
  ['[ff02::1]', 'ff02::1', 'multicast'],
  ['[::ffff:224.0.0.1]', '::ffff:e000:1', 'multicast'],
  // Private
  ['10.0.0.7', '10.0.0.7', 'private'],
  ['167772167', '10.0.0.7', 'private'],
  ['172.16.0.1', '172.16.0.1', 'private'],
  ['172.31.255.255', '172.31.255.255', 'private'],
  ['192.168.1.1', '192.168.1.1', 'private'],
  ['100.64.0.1', '100.64.0.1', 'private'],
  ['[fd12:3456::1]', 'fd12:3456::1', 'private'],
  ['[fc00::1]', 'fc00::1', 'private'],
  ['[fec0::1]', 'fec0::1', 'private'],
  ['[::ffff:10.0.0.7]', '::ffff:a00:7', 'private'],
  ['[64:ff9b::10.0.0.7]', '64:ff9b::a00:7', 'private'],
  ['[64:ff9b:1::93b8:d822]', '64:ff9b:1::93b8:d822', 'private'], // local-use NAT64 is not public
  ['[2002:c0a8:101::1]', '2002:c0a8:101::1', 'private'],
  // Reserved (special-purpose, not public)
  ['192.0.2.1', '192.0.2.1', 'reserved'],
  ['198.51.100.7', '198.51.100.7', 'reserved'],
  ['203.0.113.9', '203.0.113.9', 'reserved'],
  ['198.18.0.1', '198.18.0.1', 'reserved'],
  ['192.0.0.8', '192.0.0.8', 'reserved'],
  ['240.0.0.1', '240.0.0.1', 'reserved'],
  ['[2001:db8::1]', '2001:db8::1', 'reserved'],
  ['[100::1]', '100::1', 'reserved'],
  ['[4000::1]', '4000::1', 'reserved'],
  ['[2001:0:4136:e378:8000:63bf:3fff:fdd2]', '2001:0:4136:e378:8000:63bf:3fff:fdd2', 'reserved'], // Teredo, public ends
  // Public
  ['93.184.216.34', '93.184.216.34', 'public'],
  ['1.1.1.1', '1.1.1.1', 'public'],
  ['172.32.0.1', '172.32.0.1', 'public'],
  ['100.128.0.1', '100.128.0.1', 'public'],
  ['[2606:4700:4700::1111]', '2606:4700:4700::1111', 'public'],
  ['[::ffff:93.184.216.34]', '::ffff:5db8:d822', 'public'],
  ['[64:ff9b::93.184.216.34]', '64:ff9b::5db8:d822', 'public'],
  ['[2002:5db8:d822::1]', '2002:5db8:d822::1', 'public'],
  ['hooks.example.com', 'hooks.example.com', 'public'],
  ['hooks.example.com.', 'hooks.example.com', 'public'],
  // Not addresses at all
  ['[1::2::3]', '1::2::3', 'invalid'],
  ['[12345::1]', '12345::1', 'invalid'],
];

const NEVER: AddressKind[] = ['metadata', 'linkLocal', 'unspecified', 'multicast', 'broadcast', 'invalid'];
const LOCAL: AddressKind[] = ['loopback', 'private', 'reserved'];

describe('classifyHost: every form of an address is judged as the address it is', () => {
  it.each(HOSTS)('%s is %s, %s', (written, normalised, kind) => {
    expect(classifyHost(written)).toMatchObject({ host: normalised, kind });
  });
});

describe('refuseTargetUrl over every form (what save and send decide)', () => {
  // Rows a URL can hold: bracketed or IPv4/name hosts, no zone id, no malformed address (those
  // are refused as unparsable, below).
  const urlRows = HOSTS.filter(
    ([w, , kind]) => kind !== 'invalid' && !w.includes('%') && (w.startsWith('[') || !w.includes(':')),
  );

  it.each(urlRows)('http://%s/ (%s, %s)', (written, _normalised, kind) => {
    const url = `http://${written}/hook`;
    const dev = refuseTargetUrl(url, DEV);
    const prod = refuseTargetUrl(url, PROD);
    const https = refuseTargetUrl(`https://${written}/hook`, PROD);
    if (NEVER.includes(kind)) {
      expect(dev).toMatch(/is never called$/);
      expect(prod).toMatch(/is never called$/);
      // An allow-list cannot open what is never called.
      expect(refuseTargetUrl(url, { production: true, allowedHosts: [written.replace(/^\[|\]$/g, '')] })).toBe(prod);
    } else if (LOCAL.includes(kind)) {
      expect(dev).toBeUndefined();
      expect(prod).toMatch(/CALLOUT_ALLOWED_HOSTS$/);
      expect(https).toBe(prod);
    } else {
      expect(dev).toBeUndefined();
      expect(prod).toBe('in production callouts use https');
      expect(https).toBeUndefined();
    }
  });

  it('names the address the form reaches and how', () => {
    expect(refuseTargetUrl('http://[::ffff:169.254.169.254]/latest/meta-data/', DEV)).toBe(
      '[::ffff:a9fe:a9fe] is 169.254.169.254 (IPv4-mapped), a cloud metadata address and is never called',
    );
    expect(refuseTargetUrl('http://[64:ff9b::7f00:1]/hook', PROD)).toBe(
      '[64:ff9b::7f00:1] is 127.0.0.1 (NAT64), a loopback address; in production such targets must be listed in CALLOUT_ALLOWED_HOSTS',
    );
    expect(refuseTargetUrl('http://2130706433/hook', PROD)).toBe(
      '127.0.0.1 is a loopback address; in production such targets must be listed in CALLOUT_ALLOWED_HOSTS',
    );
  });

  it('a zone id or a malformed address never gets through', () => {
    expect(refuseTargetUrl('http://[fe80::1%25eth0]/hook', DEV)).toMatch(/is not an absolute URL/);
    expect(refuseTargetUrl('http://[1::2::3]/hook', DEV)).toMatch(/is not an absolute URL/);
  });

  it('the allow-list matches an address in any of its forms', () => {
    const policy = { production: true, allowedHosts: ['127.0.0.1', 'hooks.internal.', '[fd12:3456::1]'] };
    expect(refuseTargetUrl('http://[::ffff:7f00:1]/hook', policy)).toBeUndefined();
    expect(refuseTargetUrl('http://2130706433/hook', policy)).toBeUndefined();
    expect(refuseTargetUrl('http://127.0.0.2/hook', policy)).toMatch(/CALLOUT_ALLOWED_HOSTS/);
    expect(refuseTargetUrl('http://hooks.internal/hook', policy)).toBeUndefined();
    expect(refuseTargetUrl('http://[fd12:3456:0::1]/hook', policy)).toBeUndefined();
  });

  it('refuses other schemes and credentials', () => {
    expect(refuseTargetUrl('ftp://hooks.example.com/x', DEV)).toMatch(/only http and https/);
    expect(refuseTargetUrl('https://u:p@hooks.example.com/x', DEV)).toMatch(/credentials/);
  });
});

describe('refuseResolvedAddress over every form (what the guarded lookup decides)', () => {
  // Rows that are addresses, as a resolver would answer them.
  const addressRows = HOSTS.filter(([w, , kind]) => kind !== 'invalid' && classifyHost(w).literal);

  it.each(addressRows)('a name resolving to %s (%s, %s)', (written, _normalised, k) => {
    const address = written.replace(/^\[|\]$/g, '').replace('%25', '%');
    const dev = refuseResolvedAddress('innocent.example', address, DEV);
    const prod = refuseResolvedAddress('innocent.example', address, PROD);
    if (NEVER.includes(k)) {
      expect(dev).toMatch(/which is never called$/);
      expect(prod).toBe(dev);
      expect(
        refuseResolvedAddress('innocent.example', address, { production: true, allowedHosts: ['innocent.example'] }),
      ).toBe(prod);
    } else if (LOCAL.includes(k)) {
      expect(dev).toBeUndefined();
      expect(prod).toMatch(/CALLOUT_ALLOWED_HOSTS$/);
      expect(
        refuseResolvedAddress('innocent.example', address, { production: true, allowedHosts: ['innocent.example'] }),
      ).toBeUndefined();
    } else {
      expect(dev).toBeUndefined();
      expect(prod).toBeUndefined();
    }
  });

  it('a resolver answering with something that is not an address is refused', () => {
    expect(refuseResolvedAddress('odd.example', 'not-an-address', DEV)).toMatch(
      /not a valid address, which is never called/,
    );
  });
});

describe('address parsers', () => {
  it.each([
    ['1.2.3.4', [1, 2, 3, 4]],
    ['1.2.772', [1, 2, 3, 4]],
    ['1.131844', [1, 2, 3, 4]],
    ['16909060', [1, 2, 3, 4]],
    ['0x1.0x2.0x3.0x4', [1, 2, 3, 4]],
    ['01.02.03.04', [1, 2, 3, 4]],
    ['1.2.3.4.', [1, 2, 3, 4]],
  ])('parseIpv4(%s)', (s, bytes) => expect(parseIpv4(s)).toEqual(bytes));

  it.each(['1.2.3.4.5', '256.1.1.1', '1.2.3.256', '4294967296', '1.2.3.09', 'a.b.c.d', '', '1..2', 'example.com'])(
    'parseIpv4(%j) is not an address',
    (s) => expect(parseIpv4(s)).toBeUndefined(),
  );

  it.each(['1::2::3', '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7', 'g::1', '::ffff:1.2.3.256', '::1.2.3', '12345::'])(
    'parseIpv6(%j) is not an address',
    (s) => expect(parseIpv6(s)).toBeUndefined(),
  );

  it('parseIpv6 reads the long, compressed and dotted forms alike', () => {
    const mapped = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 169, 254, 169, 254];
    expect(parseIpv6('::ffff:169.254.169.254')).toEqual(mapped);
    expect(parseIpv6('::ffff:a9fe:a9fe')).toEqual(mapped);
    expect(parseIpv6('0:0:0:0:0:ffff:a9fe:a9fe')).toEqual(mapped);
    expect(parseIpv6('1:2:3:4:5:6:7::')).toEqual([0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7, 0, 0]);
  });
});
