import type { IncomingMessage, ServerResponse } from 'node:http';
import { render } from './views.js';

export type Handler = (req: IncomingMessage, res: ServerResponse) => Promise<boolean> | boolean;

export function sendHtml(res: ServerResponse, status: number, html: string, headers: Record<string, string> = {}) {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', ...headers });
  res.end(html);
}

export function sendJson(res: ServerResponse, status: number, body: unknown) {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body, (_k, v) => (typeof v === 'bigint' ? v.toString() : v)));
}

export function sendPage(res: ServerResponse, status: number, view: string, context: Record<string, unknown> = {}, headers: Record<string, string> = {}) {
  sendHtml(res, status, render(view, context), headers);
}
