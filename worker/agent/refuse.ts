import http from 'node:http';
import type { Duplex } from 'node:stream';

/** an HTTP refusal on a socket that asked to upgrade; the reason in a header (never a secret) */
export function refuseSocket(socket: Duplex, status: number, reason: string) {
  if (!socket.writable) return void socket.destroy();
  const text = http.STATUS_CODES[status] ?? 'Error';
  socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\nX-Berth-Agent-Reason: ${reason.replace(/[^\x20-\x7e]/g, '?').slice(0, 200)}\r\n\r\n`);
}
