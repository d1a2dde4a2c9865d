import { act, fireEvent, screen, waitFor, within } from '@testing-library/react';
import { beforeEach, describe, expect, it } from 'vitest';
import { CUSTOMER_KEY } from '../customer';
import { FakeApi, FakeWebSocket, renderApp } from '../test/fakes';

const orderOf = (id: string, status: string, createdAt: string) => ({
  id,
  basketId: 'b1',
  customerRef: 'ann@example.com',
  items: [{ productId: 'p1', name: 'Blue mug', unitPrice: 1250, quantity: 2, lineTotal: 2500 }],
  total: 2500,
  currency: 'EUR',
  status,
  createdAt,
  updatedAt: createdAt,
});

function ordersApi() {
  return new FakeApi().on('GET /orders', (call) => {
    if (call.query.get('customerRef') !== 'ann@example.com') return { status: 200, body: { items: [], next: null } };
    return call.query.get('next') === 'c1'
      ? { status: 200, body: { items: [orderOf('o-1', 'DELIVERED', '2026-11-01T10:00:00Z')], next: null } }
      : { status: 200, body: { items: [orderOf('o-2', 'CANCELLED', '2026-11-20T10:00:00Z')], next: 'c1' } };
  });
}

describe('my orders', () => {
  beforeEach(() => FakeWebSocket.reset());

  // Issue #19: order history by the customer reference the shop keeps.
  it('lists the orders of the kept e-mail address, newest first, page by page', async () => {
    localStorage.setItem(CUSTOMER_KEY, 'ann@example.com');
    const api = ordersApi();
    renderApp('/orders', api);
    const list = await screen.findByRole('list', { name: 'Your orders' });
    expect(document.title).toBe('My orders · WooCom');
    expect(within(list).getAllByRole('link').map((a) => a.getAttribute('href'))).toEqual(['/orders/o-2']);
    expect(within(list).getByText('Cancelled')).toBeTruthy();
    act(() => screen.getByRole('button', { name: 'Show older orders' }).click());
    await waitFor(() => expect(within(list).getAllByRole('link')).toHaveLength(2));
    expect(within(list).getByText('Delivered')).toBeTruthy();
    expect(api.callsTo('GET', '/orders').map((c) => c.query.get('customerRef'))).toEqual(['ann@example.com', 'ann@example.com']);
  });

  it('asks for the address when it keeps none', async () => {
    const api = ordersApi();
    renderApp('/orders', api);
    const field = screen.getByLabelText('E-mail address you ordered with');
    fireEvent.change(field, { target: { value: 'not an address' } });
    act(() => screen.getByRole('button', { name: 'Show my orders' }).click());
    expect(screen.getByText('Enter an e-mail address like name@example.com.')).toBeTruthy();
    expect(api.calls).toHaveLength(0);
    fireEvent.change(field, { target: { value: ' ann@example.com ' } });
    act(() => screen.getByRole('button', { name: 'Show my orders' }).click());
    expect(await screen.findByRole('list', { name: 'Your orders' })).toBeTruthy();
    expect(localStorage.getItem(CUSTOMER_KEY)).toBe('ann@example.com');
  });
});
