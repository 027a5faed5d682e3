// Calendar feed URLs are user data. A feed, or a redirect it answers with, must not reach the
// link-local addresses where clouds serve instance metadata and credentials (169.254.169.254,
// fd00:ec2::254). Checked where the connection is made: for an address written in the URL, and
// for every address a name resolves to, so a name that resolves differently between a check and
// the connection (DNS rebinding) cannot slip past. Other private addresses stay reachable: a feed
// may well be served inside the cluster.
import { lookup as dnsLookup, type LookupAddress, type LookupAllOptions } from 'node:dns';
import { BlockList, isIP } from 'node:net';
import { Agent, buildConnector, fetch } from 'undici';

const REFUSED = new BlockList();
REFUSED.addSubnet('169.254.0.0', 16, 'ipv4');
REFUSED.addSubnet('fe80::', 10, 'ipv6');
REFUSED.addAddress('fd00:ec2::254', 'ipv6');

export class RefusedAddressError extends Error {
  constructor(host: string, address: string) {
    super(`${host === address ? address : `${host} (${address})`} is a link-local address, where instance metadata is served: refused`);
    this.name = 'RefusedAddressError';
  }
}

/** Whether an IP address (IPv4, IPv6, IPv4-mapped IPv6) is one a feed may not reach. */
export function isRefusedAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) return REFUSED.check(address, 'ipv4');
  if (family !== 6) return false;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1];
  return mapped ? REFUSED.check(mapped, 'ipv4') : REFUSED.check(address, 'ipv6');
}

type Resolve = (hostname: string, options: LookupAllOptions, callback: (err: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => void) => void;
type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/** A `lookup` for net.connect that leaves out refused addresses, and fails when nothing else is left. */
export function guardedLookup(resolve: Resolve = dnsLookup) {
  return (hostname: string, options: { all?: boolean; family?: number }, callback: LookupCallback): void => {
    resolve(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, []);
      const allowed = addresses.filter((a) => !isRefusedAddress(a.address));
      if (allowed.length === 0) return callback(new RefusedAddressError(hostname, addresses[0]?.address ?? hostname), []);
      if (options.all) return callback(null, allowed);
      return callback(null, allowed[0]!.address, allowed[0]!.family);
    });
  };
}

const connectChecked = buildConnector({ lookup: guardedLookup() } as buildConnector.BuildOptions);

/** The dispatcher feeds are fetched with: connections to refused addresses fail before they are made. */
export const feedDispatcher = new Agent({
  connect(options, callback) {
    const host = options.hostname.replace(/^\[(.*)\]$/, '$1');
    if (isRefusedAddress(host)) return callback(new RefusedAddressError(host, host), null);
    return connectChecked(options, callback);
  },
});

/** fetch through feedDispatcher (undici's own fetch: the dispatcher must be of the same undici). */
export function fetchFeed(url: string, init: Omit<NonNullable<Parameters<typeof fetch>[1]>, 'dispatcher'>): ReturnType<typeof fetch> {
  return fetch(url, { ...init, dispatcher: feedDispatcher });
}
