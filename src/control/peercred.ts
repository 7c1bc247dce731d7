// Who is on the other end of a control connection: SO_PEERCRED on the accepted socket.
//
// Node has no public API for peer credentials, so this reads the descriptor from
// `socket._handle.fd`, a private field: `_handle` is the libuv Pipe wrap behind a
// net.Socket and `fd` its descriptor on Unix (-1 once closed). libuv owns that fd; it is
// borrowed only for the one synchronous getsockopt call made while the socket is open
// (from the server's 'connection' event), and never kept. If a Node release drops the
// field, the server refuses every connection with this module's error instead of
// letting anyone in.
import type net from 'node:net';
import { getPeerCred, type UcredValue } from '../sys/socket.js';
import { ControlError } from './protocol.js';

export type PeerCred = UcredValue;

interface PipeHandle {
  fd?: unknown;
}

/** The pid, uid and gid of the process that connected `socket`. */
export function peerCredOf(socket: net.Socket): PeerCred {
  const handle = (socket as unknown as { _handle?: PipeHandle | null })._handle;
  const fd = handle?.fd;
  if (typeof fd !== 'number' || fd < 0) {
    throw new ControlError('cannot read the peer credentials: the connection has no file descriptor (socket._handle.fd)');
  }
  return getPeerCred(fd);
}
