import { describe, expect, it } from 'vitest';
import { ApiClient, ApiError, parseError } from './api';
import { ConfigError, loadConfig, parseConfig } from './config';
import { formatMoney } from './money';
import { API, FakeApi, apiError, product } from './test/fakes';

describe('parseError', () => {
  it('reads the contract error shape with its fields', () => {
    const e = parseError(
      400,
      JSON.stringify({
        error: {
          code: 'validation_failed',
          message: 'invalid fields: quantity',
          fields: { quantity: 'must be from 1 to 99' },
        },
      }),
    );
    expect(e).toBeInstanceOf(ApiError);
    expect(e.status).toBe(400);
    expect(e.code).toBe('validation_failed');
    expect(e.message).toBe('invalid fields: quantity');
    expect(e.fields).toEqual({ quantity: 'must be from 1 to 99' });
    expect(e.retryable).toBe(false);
  });

  it('keeps sold_out counts as numbers', () => {
    const e = parseError(409, '{"error":{"code":"sold_out","message":"Blue mug is sold out","fields":{"p-1":0}}}');
    expect(e.code).toBe('sold_out');
    expect(e.fields).toEqual({ 'p-1': 0 });
  });

  it("reads API Gateway's own {message} errors", () => {
    const e = parseError(502, '{"message": "Internal server error"}');
    expect(e.code).toBe('internal');
    expect(e.message).toBe('Internal server error');
    expect(e.retryable).toBe(true);
  });

  it('survives a body that is not JSON', () => {
    const e = parseError(500, '<html>oops</html>');
    expect(e.code).toBe('internal');
    expect(e.message).toContain('HTTP 500');
    expect(parseError(404, '').message).toBe('HTTP 404');
  });
});

describe('ApiClient', () => {
  it('builds URLs under the stage without doubling slashes, encoding ids and skipping empty query values', () => {
    const api = new ApiClient('http://127.0.0.1:4000/local/');
    expect(api.url('/products')).toBe('http://127.0.0.1:4000/local/products');
    expect(api.url('/products', { limit: 20, next: null })).toBe('http://127.0.0.1:4000/local/products?limit=20');
    expect(api.url('/orders', { customerRef: 'a@b.c' })).toBe('http://127.0.0.1:4000/local/orders?customerRef=a%40b.c');
  });

  it('sends the method, JSON body and path of each call', async () => {
    const fake = new FakeApi()
      .on('PUT /baskets/{id}/items/{pid}', { status: 200, body: { id: 'b 1' } })
      .on('GET /products', { status: 200, body: { items: [product('p1', 'Mug', 1250, 3)], next: 'c2' } });
    const api = new ApiClient(API, fake.fetch);
    await api.setQuantity('b 1', 'p/1', 3);
    expect(fake.calls[0]).toMatchObject({ method: 'PUT', path: '/baskets/b%201/items/p%2F1', body: { quantity: 3 } });
    const page = await api.listProducts({ limit: 5, next: 'abc' });
    expect(page.next).toBe('c2');
    expect(page.items[0]?.name).toBe('Mug');
    expect(fake.calls[1]?.query.get('limit')).toBe('5');
    expect(fake.calls[1]?.query.get('next')).toBe('abc');
  });

  it('throws a typed ApiError for an error response', async () => {
    const fake = new FakeApi().on('POST /orders', apiError(409, 'basket_closed', 'basket b1 is checked out'));
    const api = new ApiClient(API, fake.fetch);
    const err = await api.placeOrder({ basketId: 'b1', customerRef: 'x', clientKey: 'k' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err).toMatchObject({ status: 409, code: 'basket_closed', message: 'basket b1 is checked out' });
    expect(fake.calls[0]?.body).toEqual({ basketId: 'b1', customerRef: 'x', clientKey: 'k' });
  });

  it('turns a failed fetch into a retryable network error', async () => {
    const fake = new FakeApi().on('GET /products/{id}', new TypeError('Failed to fetch'));
    const err = await new ApiClient(API, fake.fetch).getProduct('p1').catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 0, code: 'network', retryable: true });
  });
});

describe('formatMoney', () => {
  it('formats minor units in the currency', () => {
    expect(formatMoney(1250, 'EUR', 'en-US')).toBe('€12.50');
    expect(formatMoney(1999, 'USD', 'en-US')).toBe('$19.99');
    expect(formatMoney(5, 'USD', 'en-US')).toBe('$0.05');
    expect(formatMoney(1250, 'EUR', 'de-DE')).toBe('12,50\u00a0€');
  });

  it("uses the currency's own number of minor digits", () => {
    expect(formatMoney(500, 'JPY', 'en-US')).toBe('¥500');
    expect(formatMoney(1234, 'KWD', 'en-US')).toMatch(/1\.234/);
  });
});

describe('config', () => {
  it('requires apiUrl and websocketUrl', () => {
    expect(parseConfig({ apiUrl: 'http://a', websocketUrl: 'ws://b', stack: 'dev' })).toEqual({
      apiUrl: 'http://a',
      websocketUrl: 'ws://b',
      stack: 'dev',
    });
    expect(() => parseConfig({ apiUrl: 'http://a' })).toThrow(/websocketUrl/);
    expect(() => parseConfig('nope')).toThrow(ConfigError);
  });

  it('reports why /config.json could not be loaded', async () => {
    const missing = () =>
      Promise.resolve(
        new Response('{"error":{"code":"stack_not_running","message":"no ready file"}}', { status: 503 }),
      );
    await expect(loadConfig(missing)).rejects.toThrow('Could not load /config.json (HTTP 503): no ready file');
    const down = () => Promise.reject(new TypeError('Failed to fetch'));
    await expect(loadConfig(down)).rejects.toThrow(/did not answer/);
    const html = () => Promise.resolve(new Response('<html></html>', { status: 200 }));
    await expect(loadConfig(html)).rejects.toThrow(/not JSON/);
  });
});
