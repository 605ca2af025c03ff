/** Credentials of the peer of a connected Unix socket (SO_PEERCRED). Throws on error. */
export function peerCredentials(fd: number): { pid: number; uid: number; gid: number };
