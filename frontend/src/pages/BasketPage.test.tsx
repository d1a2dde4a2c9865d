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
    // Bug (issue #19): "invalid fields: quantity" reached the customer.
    expect(line.getByRole('alert').textContent).toContain('Choose a quantity from 1 to 99.');
    expect(line.getByRole('alert').textContent).not.toContain('invalid fields');
    expect(document.activeElement).toBe(line.getByRole('alert'));
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

  /** The baskets API plus products with the given stock. */
  function withStock(api: FakeApi, stock: Record<string, number>) {
    return api.on('GET /products/{id}', (_c, { id }) => ({
      status: 200,
      body: product(id ?? '', id === 'p1' ? 'Blue mug' : 'Teapot', 1000, stock[id ?? ''] ?? 0),
    }));
  }

  // Bug (issue #19): the basket accepted 50 of a product with 6 in stock, and
  // typing 150 silently reverted it.
  it('shows stock on each line, stops + at it, and says why a typed quantity is refused', async () => {
    const api = withStock(basketServer(lines), { p1: 3, p2: 200 });
    renderApp('/basket', api);
    const line = within((await screen.findByRole('heading', { name: 'Blue mug' })).closest('article') as HTMLElement);
    await waitFor(() => expect(line.getByTestId('line-stock').textContent).toBe('Only 3 left'));
    expect(line.getByTestId('line-stock').className).toContain('low-stock');
    expect(document.title).toBe('Basket · WooCom');

    const plus = line.getByRole('button', { name: 'Increase quantity of Blue mug' });
    act(() => plus.click());
    await waitFor(() => expect((line.getByLabelText('Quantity of Blue mug') as HTMLInputElement).value).toBe('3'));
    expect(plus.getAttribute('aria-disabled')).toBe('true');
    act(() => plus.click());
    expect(api.callsTo('PUT', '/baskets/b1/items/p1')).toHaveLength(1);

    const input = line.getByLabelText('Quantity of Blue mug') as HTMLInputElement;
    fireEvent.change(input, { target: { value: '150' } });
    fireEvent.keyDown(input, { key: 'Enter' });
    expect(line.getByRole('alert').textContent).toBe('Only 3 are in stock: choose 3 or fewer.');
    expect(input.value).toBe('150');
    expect(input.getAttribute('aria-invalid')).toBe('true');
    expect(api.callsTo('PUT', '/baskets/b1/items/p1')).toHaveLength(1);
    fireEvent.keyDown(input, { key: 'Escape' });
    expect(input.value).toBe('3');

    const teapot = within(screen.getByRole('heading', { name: 'Teapot' }).closest('article') as HTMLElement);
    const teapotInput = teapot.getByLabelText('Quantity of Teapot') as HTMLInputElement;
    fireEvent.change(teapotInput, { target: { value: '150' } });
    fireEvent.blur(teapotInput);
    expect(teapot.getByRole('alert').textContent).toBe('You can have at most 99 of one product.');
  });

  // Bug (issue #19): after a sold-out checkout the basket showed nothing,
  // with "+" still enabled on the product that ran out.
  it('marks a line with more than is left, offers to reduce it, and keeps it live', async () => {
    const api = withStock(basketServer(lines), { p1: 1, p2: 0 });
    renderApp('/basket', api);
    expect((await screen.findByTestId('basket-short')).textContent).toContain('2 products have less in stock');
    const mug = within(screen.getByRole('heading', { name: 'Blue mug' }).closest('article') as HTMLElement);
    expect(mug.getByTestId('line-short').textContent).toContain('Only 1 is left; your basket holds 2.');
    expect(mug.getByRole('button', { name: 'Increase quantity of Blue mug' }).getAttribute('aria-disabled')).toBe('true');
    const teapot = within(screen.getByRole('heading', { name: 'Teapot' }).closest('article') as HTMLElement);
    expect(teapot.getByTestId('line-short').textContent).toContain('Teapot is sold out.');

    act(() => mug.getByRole('button', { name: 'Reduce to 1' }).click());
    await waitFor(() => expect(mug.queryByTestId('line-short')).toBeNull());
    expect(api.callsTo('PUT', '/baskets/b1/items/p1').map((c) => c.body)).toEqual([{ quantity: 1 }]);

    // A restock pushed live clears the mark.
    act(() => FakeWebSocket.latest().open());
    act(() => FakeWebSocket.latest().push({ type: 'stock', productId: 'p2', stock: 4 }));
    await waitFor(() => expect(screen.queryByTestId('basket-short')).toBeNull());
    expect(teapot.getByTestId('line-stock').textContent).toBe('Only 4 left');
  });

  // Bug (issue #19): after +, − or Remove focus fell to the page body.
  it('keeps focus on the stepper after a change, and moves it to the heading after a removal', async () => {
    const api = withStock(basketServer(lines), { p1: 10, p2: 10 });
    renderApp('/basket', api);
    const plus = await screen.findByRole('button', { name: 'Increase quantity of Blue mug' });
    plus.focus();
    act(() => plus.click());
    await waitFor(() => expect(screen.getByTestId('basket-total').textContent).toBe('€67.50'));
    expect(document.activeElement).toBe(plus);
    const minus = screen.getByRole('button', { name: 'Decrease quantity of Teapot' });
    minus.focus();
    expect(minus.getAttribute('aria-disabled')).toBe('true');
    act(() => minus.click());
    expect(document.activeElement).toBe(minus);

    const remove = screen.getByRole('button', { name: 'Remove Teapot' });
    remove.focus();
    act(() => remove.click());
    await waitFor(() => expect(screen.queryByRole('heading', { name: 'Teapot' })).toBeNull());
    expect(document.activeElement).toBe(screen.getByRole('heading', { level: 1, name: 'Basket' }));
  });

  // Bug (issue #19): a second tab kept showing a basket checked out elsewhere
  // (badge 1), and "+" emptied it without a word.
  it('tells a second tab that its basket was checked out elsewhere', async () => {
    let checkedOut = false;
    const api = withStock(basketServer(lines), { p1: 10, p2: 10 }).on('GET /baskets/{id}', () => ({
      status: 200,
      body: checkedOut
        ? { ...basketOf('b1', lines), status: 'CHECKED_OUT', orderId: 'o-42' }
        : basketOf('b1', lines),
    }));
    renderApp('/basket', api);
    await screen.findByRole('heading', { name: 'Blue mug' });
    expect(screen.getByRole('link', { name: /Basket/ }).textContent).toContain('3');

    // The other tab checks out and forgets the basket id.
    checkedOut = true;
    localStorage.removeItem(BASKET_KEY);
    act(() => window.dispatchEvent(new StorageEvent('storage', { key: BASKET_KEY, oldValue: 'b1', newValue: null })));
    const notice = await screen.findByTestId('checked-out-elsewhere');
    expect(notice.textContent).toContain('This basket was checked out in another tab or window.');
    expect(within(notice).getByRole('link', { name: 'See that order' }).getAttribute('href')).toBe('/orders/o-42');
    expect(screen.queryByRole('heading', { name: 'Blue mug' })).toBeNull();
    expect(screen.getByRole('link', { name: /Basket/ }).textContent).toBe('Basket');
  });

  it('explains a change refused because the basket was checked out meanwhile', async () => {
    let checkedOut = false;
    const api = withStock(basketServer(lines), { p1: 10, p2: 10 })
      .on('GET /baskets/{id}', () => ({
        status: 200,
        body: checkedOut ? { ...basketOf('b1', lines), status: 'CHECKED_OUT', orderId: 'o-42' } : basketOf('b1', lines),
      }))
      .on('PUT /baskets/{id}/items/{pid}', () => {
        checkedOut = true;
        return apiError(409, 'basket_closed', 'basket b1 was checked out already');
      });
    renderApp('/basket', api);
    const plus = await screen.findByRole('button', { name: 'Increase quantity of Blue mug' });
    act(() => plus.click());
    expect((await screen.findByTestId('checked-out-elsewhere')).textContent).toContain('checked out');
    expect(screen.queryByText(/basket b1/)).toBeNull();
  });
});
