// Test doubles at the app's two boundaries: fetch and WebSocket.
import { render } from '@testing-library/react';
import type { ReactNode } from 'react';
import { MemoryRouter } from 'react-router';
import { ApiClient } from '../api';
import { AppRoutes } from '../App';
import { BasketProvider } from '../basket';
import { ShopProvider, type Shop } from '../shop';

export const API = 'http://api.test/local';
export const WS = 'ws://ws.test/local';

export interface Call {
  method: string;
  path: string;
  query: URLSearchParams;
  body: unknown;
}

export type Reply = { status: number; body?: unknown } | Error;
export type Handler = (call: Call, params: Record<string, string>) => Reply | Promise<Reply>;

/**
 * A fetch for the API base URL that routes `METHOD /path/{param}` to handlers
 * and records every call. An unrouted request fails the test loudly.
 */
export class FakeApi {
  calls: Call[] = [];
  private routes: { method: string; pattern: RegExp; names: string[]; handler: Handler }[] = [];

  on(route: string, handler: Handler | Reply): this {
    const [method = 'GET', path = '/'] = route.split(' ');
    const names: string[] = [];
    const pattern = new RegExp(
      '^' +
        path.replace(/\{(\w+)\}/g, (_m, name: string) => {
          names.push(name);
          return '([^/]+)';
        }) +
        '$',
    );
    const h: Handler = typeof handler === 'function' ? handler : () => handler;
    // Later routes win, so a test can override a default.
    this.routes.unshift({ method, pattern, names, handler: h });
    return this;
  }

  fetch = async (input: string, init?: RequestInit): Promise<Response> => {
    const url = new URL(input);
    if (!input.startsWith(API)) throw new Error(`request outside the API: ${input}`);
    const path = url.pathname.slice(new URL(API).pathname.length);
    const method = init?.method ?? 'GET';
    const body = typeof init?.body === 'string' ? (JSON.parse(init.body) as unknown) : undefined;
    const call: Call = { method, path, query: url.searchParams, body };
    this.calls.push(call);
    for (const r of this.routes) {
      const m = r.method === method ? r.pattern.exec(path) : null;
      if (!m) continue;
      const params = Object.fromEntries(r.names.map((n, i) => [n, decodeURIComponent(m[i + 1] ?? '')]));
      const reply = await r.handler(call, params);
      if (reply instanceof Error) throw reply;
      return new Response(reply.body === undefined ? '' : JSON.stringify(reply.body), {
        status: reply.status,
        headers: { 'Content-Type': 'application/json' },
      });
    }
    throw new Error(`no fake route for ${method} ${path}`);
  };

  callsTo(method: string, path: string): Call[] {
    return this.calls.filter((c) => c.method === method && c.path === path);
  }
}

export function apiError(status: number, code: string, message: string, fields?: Record<string, unknown>): Reply {
  return { status, body: { error: { code, message, ...(fields ? { fields } : {}) } } };
}

/** A WebSocket the test drives: open it, push messages, drop it. */
export class FakeWebSocket {
  static instances: FakeWebSocket[] = [];
  static readonly CONNECTING = 0;
  static readonly OPEN = 1;
  static readonly CLOSING = 2;
  static readonly CLOSED = 3;

  readyState = FakeWebSocket.CONNECTING;
  onopen: ((ev: Event) => void) | null = null;
  onmessage: ((ev: MessageEvent) => void) | null = null;
  onclose: ((ev: CloseEvent) => void) | null = null;
  onerror: ((ev: Event) => void) | null = null;
  closedByClient = false;

  constructor(readonly url: string) {
    FakeWebSocket.instances.push(this);
  }

  static reset(): void {
    FakeWebSocket.instances = [];
  }

  static latest(): FakeWebSocket {
    const ws = FakeWebSocket.instances.at(-1);
    if (!ws) throw new Error('no WebSocket was opened');
    return ws;
  }

  open(): void {
    this.readyState = FakeWebSocket.OPEN;
    this.onopen?.(new Event('open'));
  }

  push(message: unknown): void {
    this.onmessage?.(new MessageEvent('message', { data: JSON.stringify(message) }));
  }

  /** The server or the network drops the connection. */
  drop(): void {
    this.readyState = FakeWebSocket.CLOSED;
    this.onclose?.(new CloseEvent('close', { code: 1006 }));
  }

  send(): void {}

  close(): void {
    this.closedByClient = true;
    this.readyState = FakeWebSocket.CLOSED;
  }
}

export function makeShop(api: FakeApi, backoff: (attempt: number) => number = () => 10): Shop {
  return {
    config: { apiUrl: API, websocketUrl: WS, stack: 'test' },
    api: new ApiClient(API, api.fetch),
    WebSocketImpl: FakeWebSocket as unknown as typeof WebSocket,
    backoff,
  };
}

export function renderApp(path: string, api: FakeApi, extra?: ReactNode) {
  const shop = makeShop(api);
  return render(
    <ShopProvider shop={shop}>
      <BasketProvider>
        <MemoryRouter initialEntries={[path]}>
          <AppRoutes />
          {extra}
        </MemoryRouter>
      </BasketProvider>
    </ShopProvider>,
  );
}

export const product = (id: string, name: string, price: number, stock: number) => ({
  id,
  name,
  description: `${name} description`,
  price,
  currency: 'EUR',
  stock,
});

export function basketOf(id: string, lines: { productId: string; name: string; unitPrice: number; quantity: number }[]) {
  const items = lines.map((l) => ({ ...l, lineTotal: l.unitPrice * l.quantity }));
  return {
    id,
    status: 'OPEN' as const,
    items,
    total: items.reduce((n, l) => n + l.lineTotal, 0),
    currency: 'EUR',
    orderId: null,
    updatedAt: '2026-11-23T12:00:00Z',
  };
}
