import { act, fireEvent, screen, waitFor, within } from '@testing-library/react';
import { beforeEach, describe, expect, it } from 'vitest';
import { BASKET_KEY } from '../basket';
import { FakeApi, FakeWebSocket, apiError, basketOf, product, renderApp } from '../test/fakes';

type Lines = Parameters<typeof basketOf>[1];

/** A fake baskets API that keeps one basket's lines and recomputes totals like the server. */
function basketServer(initial: Lines) {
  let lines = initial;
  const api = new FakeApi()
    .on('GET /baskets/{id}', (_c, { id }) => (id === 'b1' ? { status: 200, body: basketOf('b1', lines) } : apiError(404, 'not_found', 'no basket')))
    .on('PUT /baskets/{id}/items/{pid}', (call, { pid }) => {
      const quantity = (call.body as { quantity: number }).quantity;
      lines = quantity === 0 ? lines.filter((l) => l.productId !== pid) : lines.map((l) => (l.productId === pid ? { ...l, quantity } : l));
      return { status: 200, body: basketOf('b1', lines) };
    })
    .on('DELETE /baskets/{id}/items/{pid}', (_c, { pid }) => {
      lines = lines.filter((l) => l.productId !== pid);
      return { status: 200, body: basketOf('b1', lines) };
    });
  return api;
}

describe('basket', () => {
  beforeEach(() => {
    FakeWebSocket.reset();
    localStorage.setItem(BASKET_KEY, 'b1');
  });

  const lines: Lines = [
    { productId: 'p1', name: 'Blue mug', unitPrice: 1250, quantity: 2 },
    { productId: 'p2', name: 'Teapot', unitPrice: 3000, quantity: 1 },
  ];

  it('shows the lines and total, and changes a quantity with the stepper', async () => {
    const api = basketServer(lines);
    renderApp('/basket', api);
    expect(await screen.findByRole('heading', { name: 'Blue mug' })).toBeTruthy();
    expect(screen.getByTestId('basket-total').textContent).toBe('€55.00');
    expect(screen.getByRole('link', { name: /Basket/ }).textContent).toContain('3');

    act(() => screen.getByRole('button', { name: 'Increase quantity of Blue mug' }).click());
    await waitFor(() => expect(screen.getByTestId('basket-total').textContent).toBe('€67.50'));
    expect(api.callsTo('PUT', '/baskets/b1/items/p1').map((c) => c.body)).toEqual([{ quantity: 3 }]);
    expect((screen.getByLabelText('Quantity of Blue mug') as HTMLInputElement).value).toBe('3');
    expect(screen.getByText(/Blue mug: quantity 3\. Total €67\.50/)).toBeTruthy();
  });

  it('sets a typed quantity on Enter and removes a line', async () => {
    const api = basketServer(lines);
    renderApp('/basket', api);
    const input = (await screen.findByLabelText('Quantity of Teapot')) as HTMLInputElement;
    fireEvent.change(input, { target: { value: '4' } });
    fireEvent.keyDown(input, { key: 'Enter' });
    await waitFor(() => expect(screen.getByTestId('basket-total').textContent).toBe('€145.00'));
    expect(api.callsTo('PUT', '/baskets/b1/items/p2').map((c) => c.body)).toEqual([{ quantity: 4 }]);

    act(() => screen.getByRole('button', { name: 'Remove Blue mug' }).click());
    await waitFor(() => expect(screen.queryByRole('heading', { name: 'Blue mug' })).toBeNull());
    expect(api.callsTo('DELETE', '/baskets/b1/items/p1')).toHaveLength(1);
    expect(screen.getByTestId('basket-total').textContent).toBe('€120.00');
  });

  it('shows a failed change next to the line and keeps the old quantity', async () => {
    const api = basketServer(lines).on(
      'PUT /baskets/{id}/items/{pid}',
      apiError(400, 'validation_failed', 'invalid fields: quantity', { quantity: 'must be from 1 to 99' }),
    );
    renderApp('/basket', api);
    const decrease = await screen.findByRole('button', { name: 'Decrease quantity of Blue mug' });
    act(() => decrease.click());
    await screen.findByRole('alert');
    const line = within(screen.getByRole('heading', { name: 'Blue mug' }).closest('article') as HTMLElement);
    expect(line.getByRole('alert').textContent).toContain('invalid fields: quantity');
    expect((line.getByLabelText('Quantity of Blue mug') as HTMLInputElement).value).toBe('2');
    expect(screen.getByTestId('basket-total').textContent).toBe('€55.00');
  });

  it('starts a new basket when the stored one is gone, and adds to it from the product page', async () => {
    localStorage.setItem(BASKET_KEY, 'gone');
    const api = new FakeApi()
      .on('GET /baskets/{id}', apiError(404, 'not_found', 'no such basket'))
      .on('GET /products/{id}', { status: 200, body: product('p1', 'Blue mug', 1250, 8) })
      .on('POST /baskets', { status: 201, body: basketOf('b2', []) })
      .on('POST /baskets/{id}/items', (call, { id }) => ({
        status: 200,
        body: basketOf(id ?? '', [{ productId: 'p1', name: 'Blue mug', unitPrice: 1250, quantity: (call.body as { quantity: number }).quantity }]),
      }));
    renderApp('/products/p1', api);
    const qty = await screen.findByLabelText('Quantity');
    fireEvent.change(qty, { target: { value: '2' } });
    act(() => screen.getByRole('button', { name: 'Add to basket' }).click());
    expect(await screen.findByText(/Added 2 × Blue mug to your basket/)).toBeTruthy();
    expect(api.callsTo('POST', '/baskets')).toHaveLength(1);
    expect(api.callsTo('POST', '/baskets/b2/items').map((c) => c.body)).toEqual([{ productId: 'p1', quantity: 2 }]);
    expect(localStorage.getItem(BASKET_KEY)).toBe('b2');
  });
});
