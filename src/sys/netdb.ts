// Name and interface lookups: getaddrinfo(3), freeaddrinfo(3), gai_strerror(3) (glibc
// 2.36 <netdb.h>) and if_indextoname(3) (<net/if.h>). Used to resolve numactl's `ip:HOST`
// node specifier the way numactl does: the first address getaddrinfo returns.
import { koffi, libc } from './libc.js';

export const AF_INET = 2;
export const AF_INET6 = 10;
/** IF_NAMESIZE (<net/if.h>): an interface name and its NUL. */
export const IF_NAMESIZE = 16;
/** Where the address sits in struct sockaddr_in and struct sockaddr_in6 (<netinet/in.h>). */
export const SIN_ADDR_OFFSET = 4;
export const SIN6_ADDR_OFFSET = 8;

/** struct addrinfo (glibc, x86_64): koffi lays it out with the C alignment. */
export const Addrinfo = koffi.struct({
  ai_flags: 'int', ai_family: 'int', ai_socktype: 'int', ai_protocol: 'int', ai_addrlen: 'uint32_t',
  ai_addr: 'void *', ai_canonname: 'char *', ai_next: 'void *',
});

const getaddrinfoRaw = libc.func('int getaddrinfo(const char *node, const char *service, const void *hints, _Out_ void **res)');
const freeaddrinfoRaw = libc.func('void freeaddrinfo(void *res)');
const gaiStrerrorRaw = libc.func('const char *gai_strerror(int errcode)');
const ifIndextonameRaw = libc.func('char *if_indextoname(unsigned int ifindex, _Out_ char *ifname)');

/** A name getaddrinfo could not resolve: `code` is its EAI_* value, the message glibc's. */
export class ResolveError extends Error {
  readonly code: number;

  constructor(host: string, code: number) {
    super(`cannot resolve ${host}: ${gaiStrerrorRaw(code) as string}`);
    this.name = 'ResolveError';
    this.code = code;
  }
}

export interface Address {
  family: number;
  /** The raw address: 4 bytes (IPv4) or 16 (IPv6), network order. */
  bytes: Buffer;
}

/**
 * The first address getaddrinfo(host, NULL, NULL) returns (no hints, as numactl asks).
 * Throws ResolveError. The result list is glibc's and is freed here; the bytes are copied.
 */
export function firstAddress(host: string): Address {
  const res: unknown[] = [null];
  const rc = getaddrinfoRaw(host, null, null, res) as number;
  if (rc !== 0) throw new ResolveError(host, rc);
  try {
    const ai = koffi.decode(res[0], Addrinfo) as { ai_family: number; ai_addrlen: number; ai_addr: unknown };
    const sa = Buffer.from(koffi.decode(ai.ai_addr, koffi.array('uint8_t', ai.ai_addrlen)) as number[]);
    const bytes = ai.ai_family === AF_INET6 ? sa.subarray(SIN6_ADDR_OFFSET, SIN6_ADDR_OFFSET + 16)
      : sa.subarray(SIN_ADDR_OFFSET, SIN_ADDR_OFFSET + 4);
    return { family: ai.ai_family, bytes: Buffer.from(bytes) };
  } finally {
    freeaddrinfoRaw(res[0]);
  }
}

/** The name of interface `index`, or undefined when there is none (ENXIO). */
export function interfaceName(index: number): string | undefined {
  const buf = Buffer.alloc(IF_NAMESIZE);
  const name = ifIndextonameRaw(index, buf) as string | null;
  return name ?? undefined;
}
