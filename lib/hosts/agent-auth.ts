import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * How the web process proves itself to a host's agent (worker/agent): every request carries
 * `x-berth-agent-auth: <unix seconds>.<hex HMAC-SHA256(BERTH_HOST_SECRET, "<seconds>\n<METHOD>\n<path?query>")>`.
 * The secret never crosses the network, a signature is good for one method and path (which name
 * the workspace and the target) and for AGENT_AUTH_WINDOW_S either side of the agent's clock.
 */
export const AGENT_AUTH_HEADER = 'x-berth-agent-auth';
export const AGENT_AUTH_WINDOW_S = 60;

export function signAgentRequest(secret: string, method: string, path: string, nowMs = Date.now()): string {
  const ts = Math.floor(nowMs / 1000);
  return `${ts}.${mac(secret, ts, method, path)}`;
}

/** true only for a well-formed, fresh signature of exactly this method and path */
export function verifyAgentRequest(secret: string, header: string | string[] | undefined, method: string, path: string, nowMs = Date.now()): boolean {
  if (typeof header !== 'string') return false;
  const m = /^(\d{1,12})\.([0-9a-f]{64})$/.exec(header);
  if (!m) return false;
  const ts = Number(m[1]);
  if (Math.abs(nowMs / 1000 - ts) > AGENT_AUTH_WINDOW_S) return false;
  const want = Buffer.from(mac(secret, ts, method, path), 'hex');
  return timingSafeEqual(want, Buffer.from(m[2]!, 'hex'));
}

function mac(secret: string, ts: number, method: string, path: string): string {
  return createHmac('sha256', secret).update(`${ts}\n${method.toUpperCase()}\n${path}`).digest('hex');
}
