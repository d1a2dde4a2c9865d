import { act, screen, waitFor } from '@testing-library/react';
import { beforeEach, describe, expect, it } from 'vitest';
import { FakeApi, FakeWebSocket, apiError, product, renderApp } from '../test/fakes';

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
    await waitFor(() => expect(screen.getByText('Live updates on')).toBeTruthy());
    act(() => FakeWebSocket.latest().push({ type: 'stock', productId: 'other', stock: 0 }));
    expect(screen.getByTestId('stock').textContent).toBe('Only 2 left');
    act(() => FakeWebSocket.latest().push({ type: 'stock', productId: 'p1', stock: 0 }));
    expect(screen.getByTestId('stock').textContent).toBe('Sold out');
    expect((screen.getByRole('button', { name: 'Sold out' }) as HTMLButtonElement).disabled).toBe(true);
  });

  it('says when there is no such product', async () => {
    const api = new FakeApi().on('GET /products/{id}', apiError(404, 'not_found', 'no product nope'));
    renderApp('/products/nope', api);
    expect((await screen.findByRole('alert')).textContent).toContain('There is no product with id “nope”.');
    expect(screen.getByRole('link', { name: 'Back to the catalogue' })).toBeTruthy();
  });
});
