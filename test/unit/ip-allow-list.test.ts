import { describe, expect, it } from 'vitest';
import { canonicalIp, ipAllowed, normaliseAllowListEntry } from '../../src/domain/ip-allow-list.ts';

const cidr = (entry: string) => {
  const result = normaliseAllowListEntry(entry);
  if (!result.ok) throw new Error(`${entry}: ${result.message}`);
  return result.cidr;
};

describe('IP allow-list entries', () => {
  it('normalises addresses and ranges of both families to their network CIDR', () => {
    expect(cidr('10.1.2.3')).toBe('10.1.2.3/32');
    expect(cidr('10.1.2.3/8')).toBe('10.0.0.0/8');
    expect(cidr(' 192.168.1.0/24 ')).toBe('192.168.1.0/24');
    expect(cidr('0.0.0.0/0')).toBe('0.0.0.0/0');
    expect(cidr('::1')).toBe('::1/128');
    expect(cidr('2001:db8:abcd:12::5/48')).toBe('2001:db8:abcd::/48');
    expect(cidr('2001:DB8::/32')).toBe('2001:db8::/32');
    expect(cidr('::/0')).toBe('::/0');
    expect(cidr('::ffff:10.0.0.1')).toBe('10.0.0.1/32');
    expect(cidr('::ffff:10.0.0.0/104')).toBe('10.0.0.0/8');
  });

  it('refuses what is not an address or a range', () => {
    for (const entry of ['', 'example.com', '10.0.0', '127.1', '0x7f.0.0.1', '010.0.0.1', '10.0.0.256', '10.0.0.0/33', '10.0.0.0/-1', '10.0.0.0/8/8',
      '10.0.0.0/', '10.0.0.0/ 8', '::1/129', 'fe80::1%eth0', '1:2:3:4:5:6:7:8:9', '*', '10.0.0.*']) {
      expect(normaliseAllowListEntry(entry).ok, entry).toBe(false);
    }
  });
});

describe('IP allow-list matching', () => {
  const list = ['10.0.0.0/8', '192.0.2.7/32', '2001:db8::/32', '::1/128'];

  it('allows everything when the list is empty', () => {
    expect(ipAllowed([], '203.0.113.9')).toBe(true);
    expect(ipAllowed([], undefined)).toBe(true);
  });

  it('matches IPv4 and IPv6 clients against ranges of their family', () => {
    expect(ipAllowed(list, '10.200.3.4')).toBe(true);
    expect(ipAllowed(list, '192.0.2.7')).toBe(true);
    expect(ipAllowed(list, '192.0.2.8')).toBe(false);
    expect(ipAllowed(list, '11.0.0.0')).toBe(false);
    expect(ipAllowed(list, '2001:db8:1::1')).toBe(true);
    expect(ipAllowed(list, '2001:db9::1')).toBe(false);
    expect(ipAllowed(list, '::1')).toBe(true);
    expect(ipAllowed(list, '::2')).toBe(false);
  });

  it('treats IPv4-mapped IPv6 peers as the IPv4 address they are', () => {
    expect(ipAllowed(list, '::ffff:10.1.1.1')).toBe(true);
    expect(ipAllowed(list, '::ffff:127.0.0.1')).toBe(false);
    expect(ipAllowed(['127.0.0.1/32'], '::ffff:127.0.0.1')).toBe(true);
    expect(canonicalIp('::ffff:127.0.0.1')).toBe('127.0.0.1');
    expect(canonicalIp('2001:0db8::0001')).toBe('2001:db8::1');
  });

  it('refuses a missing or unreadable client address when a list is set', () => {
    expect(ipAllowed(list, undefined)).toBe(false);
    expect(ipAllowed(list, '')).toBe(false);
    expect(ipAllowed(list, 'unknown')).toBe(false);
  });

  it('lets a stored entry that does not parse match nothing, instead of failing the request', () => {
    expect(ipAllowed(['127.0.0.1', 'garbage'], '127.0.0.1')).toBe(false);
    expect(ipAllowed(['garbage', '127.0.0.1/32'], '127.0.0.1')).toBe(true);
  });
});
