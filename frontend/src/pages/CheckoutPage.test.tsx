import { act, fireEvent, screen, waitFor } from '@testing-library/react';
import { beforeEach, describe, expect, it } from 'vitest';
import { BASKET_KEY } from '../basket';
import { FakeApi, FakeWebSocket, apiError, basketOf, renderApp, type Call, type Reply } from '../test/fakes';

const lines = [
  { productId: 'p1', name: 'Blue mug', unitPrice: 1250, quantity: 3 },
  { productId: 'p2', name: 'Teapot', unitPrice: 3000, quantity: 1 },
];

const order = {
  id: 'o-42',
  basketId: 'b1',
  customerRef: 'ann@example.com',
  items: basketOf('b1', lines).items,
  total: 6750,
  currency: 'EUR',
  status: 'PLACED',
  createdAt: '2026-11-23T12:00:00Z',
  updatedAt: '2026-11-23T12:00:00Z',
};

function checkoutApi(placeOrder: (call: Call) => Reply) {
  return new FakeApi()
    .on('GET /baskets/{id}', { status: 200, body: basketOf('b1', lines) })
    .on('GET /orders/{id}', { status: 200, body: order })
    .on('POST /orders', (call) => placeOrder(call));
}

async function fillAndSubmit() {
  const input = await screen.findByLabelText('E-mail address');
  fireEvent.change(input, { target: { value: 'ann@example.com' } });
  act(() => screen.getByRole('button', { name: 'Place order' }).click());
}

describe('checkout', () => {
  beforeEach(() => {
    FakeWebSocket.reset();
    localStorage.setItem(BASKET_KEY, 'b1');
  });

  it('names the sold-out product and what is left', async () => {
    const api = checkoutApi(() => apiError(409, 'sold_out', 'not enough in stock: Blue mug (1 left, 3 in the basket)', { p1: '1' }));
    renderApp('/checkout', api);
    await fillAndSubmit();
    const alert = await screen.findByRole('alert');
    expect(alert.textContent).toContain('Not enough stock to place your order.');
    expect(alert.textContent).toContain('Only 1 of Blue mug is left (you asked for 3).');
    expect(alert.textContent).not.toContain('Teapot');
    expect(screen.getByRole('link', { name: 'Change your basket' }).getAttribute('href')).toBe('/basket');
    // Still on the checkout page, basket kept.
    expect(localStorage.getItem(BASKET_KEY)).toBe('b1');
  });

  it('says a product with nothing left is sold out', async () => {
    const api = checkoutApi(() => apiError(409, 'sold_out', 'not enough in stock: Teapot (0 left, 1 in the basket)', { p2: '0' }));
    renderApp('/checkout', api);
    await fillAndSubmit();
    expect((await screen.findByRole('alert')).textContent).toContain('Teapot is sold out.');
  });

  // Bug (issue #19): after a lost answer the page said "Your order was not
  // placed" (it may well have been) and showed two retry buttons.
  it('says it is checking the order after a lost answer, asks again with the same key, and opens the order', async () => {
    let attempts = 0;
    let answer: (() => void) | null = null;
    const api = checkoutApi(() => ({ status: 201, body: order })).on('POST /orders', async () => {
      if (++attempts === 1) return new TypeError('Failed to fetch');
      await new Promise<void>((resolve) => (answer = resolve));
      return { status: 200, body: order };
    });
    renderApp('/checkout', api);
    await fillAndSubmit();
    const checking = await screen.findByTestId('checking-order');
    expect(checking.textContent).toContain('we are checking your order');
    expect(checking.getAttribute('role')).toBe('status');
    expect(screen.queryByText(/not placed/)).toBeNull();
    expect(screen.queryAllByRole('button')).toHaveLength(0);
    await waitFor(() => expect(answer).not.toBeNull());
    await act(async () => answer?.());
    expect(await screen.findByRole('heading', { name: 'Thank you for your order' })).toBeTruthy();
    const posts = api.callsTo('POST', '/orders').map((c) => c.body as { clientKey: string; basketId: string; customerRef: string });
    expect(posts).toHaveLength(2);
    expect(posts[0]?.clientKey).toBeTruthy();
    expect(posts[1]?.clientKey).toBe(posts[0]?.clientKey);
    expect(posts[0]).toMatchObject({ basketId: 'b1', customerRef: 'ann@example.com' });
    // The checked-out basket is no longer the browser's; the address is kept for "My orders".
    expect(localStorage.getItem(BASKET_KEY)).toBeNull();
    expect(localStorage.getItem('woocom.customerRef')).toBe('ann@example.com');
  });

  it('offers one "Check again" when the answers stay lost, with the same key', async () => {
    let down = true;
    const api = checkoutApi(() => (down ? new TypeError('Failed to fetch') : { status: 200, body: order }));
    renderApp('/checkout', api);
    await fillAndSubmit();
    const alert = await screen.findByRole('alert', {}, { timeout: 6000 });
    expect(alert.textContent).toContain('We could not confirm your order yet.');
    expect(alert.textContent).toContain('never be placed or charged twice');
    expect(screen.getAllByRole('button').map((b) => b.textContent)).toEqual(['Check again']);
    expect(document.activeElement).toBe(alert);
    down = false;
    act(() => screen.getByRole('button', { name: 'Check again' }).click());
    expect(await screen.findByRole('heading', { name: 'Thank you for your order' }, { timeout: 4000 })).toBeTruthy();
    const keys = new Set(api.callsTo('POST', '/orders').map((c) => (c.body as { clientKey: string }).clientKey));
    expect(keys.size).toBe(1);
  }, 15_000);

  it('shows the placed order at once, then follows it as fulfilment confirms it', async () => {
    // The order page's first read is slow: fulfilment has confirmed the order by the time it answers.
    let answer: (() => void) | null = null;
    const api = checkoutApi(() => ({ status: 201, body: order })).on('GET /orders/{id}', async () => {
      await new Promise<void>((resolve) => (answer = resolve));
      return { status: 200, body: { ...order, status: 'CONFIRMED', updatedAt: '2026-11-23T12:00:01Z' } };
    });
    renderApp('/checkout', api);
    await fillAndSubmit();
    expect(await screen.findByRole('heading', { name: 'Thank you for your order' })).toBeTruthy();
    expect(screen.getByTestId('order-status').getAttribute('data-status')).toBe('PLACED');
    expect(screen.queryByText('Loading your order…')).toBeNull();
    await waitFor(() => expect(answer).not.toBeNull());
    await act(async () => answer?.());
    await waitFor(() => expect(screen.getByTestId('order-status').textContent).toBe('Confirmed'));
  });

  it('uses a new clientKey for a new attempt after a sold-out answer', async () => {
    let attempts = 0;
    const api = checkoutApi(() =>
      ++attempts === 1 ? apiError(409, 'sold_out', 'Blue mug is sold out', { p1: 0 }) : { status: 201, body: order },
    );
    renderApp('/checkout', api);
    await fillAndSubmit();
    await screen.findByRole('alert');
    act(() => screen.getByRole('button', { name: 'Place order' }).click());
    await screen.findByRole('heading', { name: 'Thank you for your order' });
    const keys = api.callsTo('POST', '/orders').map((c) => (c.body as { clientKey: string }).clientKey);
    expect(keys).toHaveLength(2);
    expect(keys[1]).not.toBe(keys[0]);
  });

  it('does not send an empty customer reference', async () => {
    const api = checkoutApi(() => ({ status: 201, body: order }));
    renderApp('/checkout', api);
    await screen.findByLabelText('E-mail address');
    act(() => screen.getByRole('button', { name: 'Place order' }).click());
    await waitFor(() => expect(screen.getByText('Enter your e-mail address.')).toBeTruthy());
    expect(document.activeElement).toBe(screen.getByLabelText('E-mail address'));
    expect(screen.getByLabelText('E-mail address').getAttribute('aria-invalid')).toBe('true');
    expect(api.callsTo('POST', '/orders')).toHaveLength(0);
  });
});
