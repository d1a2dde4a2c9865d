// Typed client for the shop's REST API (functions/README.md is the contract).

export interface Product {
  id: string;
  name: string;
  description?: string | null;
  price: number;
  currency: string;
  stock: number;
  /** What the catalogue filters by; "" or absent when none. */
  category?: string;
}

export interface ProductInput {
  name: string;
  description?: string;
  price: number;
  currency?: string;
  stock: number;
}

export interface Page<T> {
  items: T[];
  next: string | null;
}

export interface Line {
  productId: string;
  name: string;
  unitPrice: number;
  quantity: number;
  lineTotal: number;
}

export type BasketStatus = 'OPEN' | 'CHECKED_OUT';

export interface Basket {
  id: string;
  status: BasketStatus;
  items: Line[];
  total: number;
  currency: string;
  orderId: string | null;
  updatedAt: string;
}

export const ORDER_STATUSES = ['PLACED', 'CONFIRMED', 'PAID', 'SHIPPED', 'DELIVERED', 'CANCELLED'] as const;
export type OrderStatus = (typeof ORDER_STATUSES)[number];

export interface Order {
  id: string;
  basketId: string;
  customerRef: string;
  items: Line[];
  total: number;
  currency: string;
  status: OrderStatus;
  createdAt: string;
  updatedAt: string;
}

export interface PlaceOrder {
  basketId: string;
  customerRef: string;
  clientKey: string;
}

/** The error codes of the contract; anything else the server sends is kept as a string. */
export type ApiErrorCode =
  | 'bad_request'
  | 'validation_failed'
  | 'not_found'
  | 'method_not_allowed'
  | 'sold_out'
  | 'basket_closed'
  | 'invalid_transition'
  | 'conflict'
  | 'internal'
  | 'storage_unavailable'
  // Not from the API: the request never got an answer, or the answer was not the error shape.
  | 'network'
  | 'unexpected_response';

/**
 * A failed request. `status` is 0 when no response arrived. `fields` maps a
 * field name to what is wrong with it; for `sold_out` it maps the product id
 * to how many are left.
 */
export class ApiError extends Error {
  readonly status: number;
  readonly code: ApiErrorCode | (string & {});
  readonly fields: Record<string, string | number>;

  constructor(
    status: number,
    code: ApiErrorCode | (string & {}),
    message: string,
    fields: Record<string, string | number> = {},
  ) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.fields = fields;
  }

  /** Worth trying again as is: no answer, a server fault or a gateway error. */
  get retryable(): boolean {
    return this.status === 0 || this.status >= 500 || this.status === 429;
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Turns a non-2xx response body into an ApiError, whatever shape it has. */
export function parseError(status: number, body: string): ApiError {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    json = undefined;
  }
  if (isRecord(json) && isRecord(json.error)) {
    const e = json.error;
    const code = typeof e.code === 'string' ? e.code : 'unexpected_response';
    const message = typeof e.message === 'string' ? e.message : `HTTP ${status}`;
    const fields: Record<string, string | number> = {};
    if (isRecord(e.fields)) {
      for (const [k, v] of Object.entries(e.fields)) {
        if (typeof v === 'string' || typeof v === 'number') fields[k] = v;
        else if (v !== null && v !== undefined) fields[k] = JSON.stringify(v);
      }
    }
    return new ApiError(status, code, message, fields);
  }
  // API Gateway's own errors: {"message": "..."} (403 unmatched route, 502, 504).
  if (isRecord(json) && typeof json.message === 'string') {
    return new ApiError(status, status >= 500 ? 'internal' : 'unexpected_response', json.message);
  }
  const text = body.trim().slice(0, 200);
  return new ApiError(
    status,
    status >= 500 ? 'internal' : 'unexpected_response',
    text ? `HTTP ${status}: ${text}` : `HTTP ${status}`,
  );
}

type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

export class ApiClient {
  readonly baseUrl: string;
  private readonly fetchImpl: FetchLike;

  constructor(baseUrl: string, fetchImpl?: FetchLike) {
    this.baseUrl = baseUrl.replace(/\/+$/, '');
    this.fetchImpl = fetchImpl ?? ((input, init) => globalThis.fetch(input, init));
  }

  url(path: string, query?: Record<string, string | number | null | undefined>): string {
    let url = this.baseUrl + path;
    if (query) {
      const params = new URLSearchParams();
      for (const [k, v] of Object.entries(query)) {
        if (v !== null && v !== undefined && v !== '') params.set(k, String(v));
      }
      const qs = params.toString();
      if (qs) url += `?${qs}`;
    }
    return url;
  }

  private async request<T>(method: string, url: string, body?: unknown, signal?: AbortSignal): Promise<T> {
    const init: RequestInit = { method, headers: { Accept: 'application/json' }, signal };
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers = { ...init.headers, 'Content-Type': 'application/json' };
    }
    let response: Response;
    try {
      response = await this.fetchImpl(url, init);
    } catch (err) {
      if (err instanceof DOMException && err.name === 'AbortError') throw err;
      throw new ApiError(0, 'network', 'Could not reach the shop. Check your connection and try again.');
    }
    const text = await response.text().catch(() => '');
    if (!response.ok) throw parseError(response.status, text);
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new ApiError(response.status, 'unexpected_response', 'The shop sent an answer that is not JSON.');
    }
  }

  private static seg(id: string): string {
    return encodeURIComponent(id);
  }

  listProducts(opts: { limit?: number; next?: string | null } = {}, signal?: AbortSignal): Promise<Page<Product>> {
    return this.request('GET', this.url('/products', { limit: opts.limit, next: opts.next }), undefined, signal);
  }

  getProduct(id: string, signal?: AbortSignal): Promise<Product> {
    return this.request('GET', this.url(`/products/${ApiClient.seg(id)}`), undefined, signal);
  }

  putProduct(id: string, product: ProductInput): Promise<Product> {
    return this.request('PUT', this.url(`/products/${ApiClient.seg(id)}`), product);
  }

  createBasket(): Promise<Basket> {
    return this.request('POST', this.url('/baskets'));
  }

  getBasket(id: string, signal?: AbortSignal): Promise<Basket> {
    return this.request('GET', this.url(`/baskets/${ApiClient.seg(id)}`), undefined, signal);
  }

  addItem(basketId: string, productId: string, quantity: number): Promise<Basket> {
    return this.request('POST', this.url(`/baskets/${ApiClient.seg(basketId)}/items`), { productId, quantity });
  }

  setQuantity(basketId: string, productId: string, quantity: number): Promise<Basket> {
    return this.request(
      'PUT',
      this.url(`/baskets/${ApiClient.seg(basketId)}/items/${ApiClient.seg(productId)}`),
      { quantity },
    );
  }

  removeItem(basketId: string, productId: string): Promise<Basket> {
    return this.request('DELETE', this.url(`/baskets/${ApiClient.seg(basketId)}/items/${ApiClient.seg(productId)}`));
  }

  placeOrder(order: PlaceOrder): Promise<Order> {
    return this.request('POST', this.url('/orders'), order);
  }

  getOrder(id: string, signal?: AbortSignal): Promise<Order> {
    return this.request('GET', this.url(`/orders/${ApiClient.seg(id)}`), undefined, signal);
  }

  listOrders(
    query: { customerRef?: string; basketId?: string; next?: string | null; limit?: number },
    signal?: AbortSignal,
  ): Promise<Page<Order>> {
    return this.request('GET', this.url('/orders', query), undefined, signal);
  }

  setOrderStatus(id: string, status: OrderStatus): Promise<Order> {
    return this.request('POST', this.url(`/orders/${ApiClient.seg(id)}/status`), { status });
  }
}
