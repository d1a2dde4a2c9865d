import { act, fireEvent, screen, waitFor } from '@testing-library/react';
import { beforeEach, describe, expect, it } from 'vitest';
import { BASKET_KEY } from '../basket';
import { FakeApi, FakeWebSocket, apiError, basketOf, product, renderApp } from '../test/fakes';

describe('product page', () => {
  beforeEach(() => FakeWebSocket.reset());

  it('shows live stock and stops selling when it runs out', async () => {
    const api = new FakeApi().on('GET /products/{id}', (_c, { id }) => ({
      status: 200,
      body: product(id ?? '', 'Blue mug', 1250, 2),
    }));
    renderApp('/products/p1', api);
    expect(await screen.findByRole('heading', { level: 1, name: 'Blue mug' })).toBeTruthy();
    expect(screen.getByTestId('stock').textContent).toBe('Only 2 left');
    const add = screen.getByRole('button', { name: 'Add to basket' }) as HTMLButtonElement;
    expect(add.disabled).toBe(false);

    act(() => FakeWebSocket.latest().open());
    await waitFor(() => expect(screen.getByText('Updates automatically')).toBeTruthy());
    act(() => FakeWebSocket.latest().push({ type: 'stock', productId: 'other', stock: 0 }));
    expect(screen.getByTestId('stock').textContent).toBe('Only 2 left');
    act(() => FakeWebSocket.latest().push({ type: 'stock', productId: 'p1', stock: 0 }));
    expect(screen.getByTestId('stock').textContent).toBe('Sold out');
    expect((screen.getByRole('button', { name: 'Sold out' }) as HTMLButtonElement).disabled).toBe(true);
  });

  it('says when there is no such product', async () => {
    const api = new FakeApi().on('GET /products/{id}', apiError(404, 'not_found', 'no product nope'));
    renderApp('/products/nope', api);
    expect((await screen.findByRole('alert')).textContent).toBe('We could not find this product. It may have left the catalogue.');
    expect(screen.getByRole('link', { name: 'Back to the catalogue' })).toBeTruthy();
  });

  // Bug (issue #19): a product with 6 in stock took 7 in "Add to basket".
  it('refuses more than is available where the quantity is chosen, and says what is in the basket', async () => {
    localStorage.setItem(BASKET_KEY, 'b1');
    let inBasket = 2;
    const api = new FakeApi()
      .on('GET /products/{id}', { status: 200, body: product('p1', 'Blue mug', 1250, 6) })
      .on('GET /baskets/{id}', () => ({
        status: 200,
        body: basketOf('b1', [{ productId: 'p1', name: 'Blue mug', unitPrice: 1250, quantity: inBasket }]),
      }))
      .on('POST /baskets/{id}/items', (call) => {
        inBasket += (call.body as { quantity: number }).quantity;
        return { status: 200, body: basketOf('b1', [{ productId: 'p1', name: 'Blue mug', unitPrice: 1250, quantity: inBasket }]) };
      });
    renderApp('/products/p1', api);
    expect((await screen.findByTestId('in-basket')).textContent).toContain('In your basket: 2');
    expect(document.title).toBe('Blue mug · WooCom');
    const qty = screen.getByLabelText('Quantity');
    expect(qty.getAttribute('max')).toBe('4');
    fireEvent.change(qty, { target: { value: '7' } });
    act(() => screen.getByRole('button', { name: 'Add to basket' }).click());
    const problem = await screen.findByText('You can add 4 more: 6 in stock, 2 in your basket.');
    expect(problem.getAttribute('role')).toBe('alert');
    expect(qty.getAttribute('aria-invalid')).toBe('true');
    expect(api.callsTo('POST', '/baskets/b1/items')).toHaveLength(0);

    fireEvent.change(qty, { target: { value: '4' } });
    act(() => screen.getByRole('button', { name: 'Add to basket' }).click());
    expect(await screen.findByText(/Added 4 × Blue mug/)).toBeTruthy();
    await waitFor(() => expect(screen.getByTestId('in-basket').textContent).toContain('In your basket: 6'));
    expect(screen.getByText('Your basket already holds all 6 we have.')).toBeTruthy();
  });

  it('says so when the shop refuses for stock, and shows the stock as it is now', async () => {
    let stock = 5;
    const api = new FakeApi()
      .on('GET /products/{id}', () => ({ status: 200, body: product('p1', 'Blue mug', 1250, stock) }))
      .on('POST /baskets', { status: 201, body: basketOf('b1', []) })
      .on('POST /baskets/{id}/items', () => {
        stock = 1;
        return apiError(409, 'sold_out', 'only 1 of Blue mug in stock; the basket holds 0', { p1: '1' });
      });
    renderApp('/products/p1', api);
    fireEvent.change(await screen.findByLabelText('Quantity'), { target: { value: '3' } });
    act(() => screen.getByRole('button', { name: 'Add to basket' }).click());
    const alert = await screen.findByRole('alert');
    expect(alert.textContent).toContain('Only 1 is left in stock.');
    expect(alert.textContent).not.toContain('the basket holds');
    expect(document.activeElement).toBe(alert);
    await waitFor(() => expect(screen.getByTestId('stock').textContent).toBe('Only 1 left'));
  });
});
