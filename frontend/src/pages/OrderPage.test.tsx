import { act, screen, waitFor } from '@testing-library/react';
import { beforeEach, describe, expect, it } from 'vitest';
import { FakeApi, FakeWebSocket, apiError, renderApp } from '../test/fakes';
import { statusHint, statusText } from './OrderPage';

const order = {
  id: 'o-42',
  basketId: 'b1',
  customerRef: 'ann@example.com',
  items: [{ productId: 'p1', name: 'Blue mug', unitPrice: 1250, quantity: 2, lineTotal: 2500 }],
  total: 2500,
  currency: 'EUR',
  status: 'PLACED',
  createdAt: '2026-11-23T12:00:00Z',
  updatedAt: '2026-11-23T12:00:00Z',
};

describe('order page', () => {
  beforeEach(() => FakeWebSocket.reset());

  it('shows the order and applies live status pushes for this order only', async () => {
    const api = new FakeApi().on('GET /orders/{id}', { status: 200, body: order });
    renderApp('/orders/o-42', api);
    expect(await screen.findByRole('heading', { name: 'Your order' })).toBeTruthy();
    const status = screen.getByTestId('order-status');
    expect(status.textContent).toBe('Placed');
    expect(screen.getByText('2 × Blue mug')).toBeTruthy();
    expect(screen.getByText('€25.00', { selector: 'strong' })).toBeTruthy();

    const ws = FakeWebSocket.latest();
    expect(ws.url).toBe('ws://ws.test/local?topics=order:o-42');
    act(() => ws.open());
    await waitFor(() => expect(screen.getByText('Updates automatically')).toBeTruthy());

    act(() => ws.push({ type: 'order', orderId: 'o-7', status: 'CANCELLED', updatedAt: '2026-11-23T12:01:00Z' }));
    expect(screen.getByTestId('order-status').textContent).toBe('Placed');

    act(() => ws.push({ type: 'order', orderId: 'o-42', status: 'PAID', updatedAt: '2026-11-23T12:02:00Z' }));
    expect(screen.getByTestId('order-status').textContent).toBe('Paid');
    expect(screen.getByTestId('order-status').closest('[aria-live]')?.getAttribute('aria-live')).toBe('polite');
    expect(screen.getByText('Paid', { selector: 'li' }).getAttribute('aria-current')).toBe('step');

    // A late, older push does not move the status back.
    act(() => ws.push({ type: 'order', orderId: 'o-42', status: 'PLACED', updatedAt: '2026-11-23T12:00:30Z' }));
    expect(screen.getByTestId('order-status').textContent).toBe('Paid');
  });

  it('moves from placed to confirmed when fulfilment takes the order on', async () => {
    const api = new FakeApi().on('GET /orders/{id}', { status: 200, body: order });
    renderApp('/orders/o-42', api);
    await screen.findByRole('heading', { name: 'Your order' });
    expect(screen.getByTestId('order-status').textContent).toBe('Placed');
    expect(screen.getByTestId('status-hint').textContent).toBe('We have received your order and are checking it.');
    expect(screen.getByText('Placed', { selector: 'li' }).getAttribute('aria-current')).toBe('step');
    expect(screen.getByText('Confirmed', { selector: 'li' }).className).toBe('');

    const ws = FakeWebSocket.latest();
    act(() => ws.open());
    act(() => ws.push({ type: 'order', orderId: 'o-42', status: 'CONFIRMED', updatedAt: '2026-11-23T12:00:01Z' }));
    const status = screen.getByTestId('order-status');
    expect(status.textContent).toBe('Confirmed');
    expect(status.getAttribute('data-status')).toBe('CONFIRMED');
    expect(screen.getByTestId('status-hint').textContent).toBe('Your order is confirmed: we are getting it ready.');
    const steps = screen.getAllByRole('listitem').filter((li) => li.closest('ol[aria-label="Order progress"]'));
    expect(steps.map((li) => li.textContent)).toEqual(['Placed', 'Confirmed', 'Paid', 'Shipped', 'Delivered']);
    expect(steps.map((li) => li.className)).toEqual(['done', 'done', '', '', '']);
    expect(screen.getByText('Confirmed', { selector: 'li' }).getAttribute('aria-current')).toBe('step');
  });

  it('names every status in words a customer understands', () => {
    expect(statusText('CONFIRMED')).toBe('Confirmed');
    expect(statusText('PLACED')).toBe('Placed');
    expect(statusHint('CANCELLED')).toBe('This order was cancelled.');
    // A status a newer API adds shows as sent, without a made-up sentence.
    expect(statusText('RETURNED')).toBe('RETURNED');
    expect(statusHint('RETURNED')).toBeNull();
  });

  it('reads the order again when the live connection comes back', async () => {
    let status = 'PLACED';
    const api = new FakeApi().on('GET /orders/{id}', () => ({ status: 200, body: { ...order, status } }));
    renderApp('/orders/o-42', api);
    await screen.findByRole('heading', { name: 'Your order' });
    act(() => FakeWebSocket.latest().open());
    status = 'SHIPPED';
    act(() => FakeWebSocket.latest().drop());
    await waitFor(() => expect(FakeWebSocket.instances).toHaveLength(2));
    act(() => FakeWebSocket.latest().open());
    await waitFor(() => expect(screen.getByTestId('order-status').textContent).toBe('Shipped'));
  });

  it('says when there is no such order', async () => {
    const api = new FakeApi().on('GET /orders/{id}', apiError(404, 'not_found', 'no order nope'));
    renderApp('/orders/nope', api);
    expect((await screen.findByRole('alert')).textContent).toContain('We could not find this order.');
    expect(document.title).toBe('Order not found · WooCom');
  });

  it('keeps a status push that arrives while the order is being read again', async () => {
    let release: (() => void) | null = null;
    let reads = 0;
    const api = new FakeApi().on('GET /orders/{id}', async () => {
      reads += 1;
      if (reads === 2) await new Promise<void>((resolve) => (release = resolve));
      return { status: 200, body: order };
    });
    renderApp('/orders/o-42', api);
    await screen.findByRole('heading', { name: 'Your order' });
    act(() => FakeWebSocket.latest().open());
    await waitFor(() => expect(reads).toBe(2));
    act(() => FakeWebSocket.latest().push({ type: 'order', orderId: 'o-42', status: 'PAID', updatedAt: '2026-11-23T12:05:00Z' }));
    await act(async () => release?.());
    await waitFor(() => expect(screen.queryByRole('status', { name: /Loading/ })).toBeNull());
    expect(screen.getByTestId('order-status').textContent).toBe('Paid');
  });

  // Issue #19: an order may be cancelled from its page while it still can be.
  it('cancels the order after asking, and shows it cancelled', async () => {
    let stored = { ...order, status: 'CONFIRMED' };
    const api = new FakeApi()
      .on('GET /orders/{id}', () => ({ status: 200, body: stored }))
      .on('POST /orders/{id}/status', (call) => {
        expect(call.body).toEqual({ status: 'CANCELLED' });
        stored = { ...stored, status: 'CANCELLED', updatedAt: '2026-11-23T12:03:00Z' };
        return { status: 200, body: stored };
      });
    renderApp('/orders/o-42', api);
    act(() => FakeWebSocket.latest()?.open());
    const start = await screen.findByRole('button', { name: 'Cancel order' });
    expect(document.title).toBe('Your order · WooCom');
    expect(screen.getByTestId('order-id').textContent).toBe('o-42');
    act(() => start.click());
    const yes = screen.getByRole('button', { name: 'Yes, cancel the order' });
    expect(document.activeElement).toBe(yes);
    act(() => screen.getByRole('button', { name: 'Keep the order' }).click());
    expect(document.activeElement).toBe(screen.getByRole('button', { name: 'Cancel order' }));
    expect(api.callsTo('POST', '/orders/o-42/status')).toHaveLength(0);

    act(() => screen.getByRole('button', { name: 'Cancel order' }).click());
    act(() => screen.getByRole('button', { name: 'Yes, cancel the order' }).click());
    await waitFor(() => expect(screen.getByTestId('order-status').textContent).toBe('Cancelled'));
    expect(screen.queryByRole('button', { name: 'Cancel order' })).toBeNull();
  });

  it('shows an order cancelled by an earlier try as cancelled', async () => {
    let stored = { ...order, status: 'PAID' };
    const api = new FakeApi()
      .on('GET /orders/{id}', () => ({ status: 200, body: stored }))
      .on('POST /orders/{id}/status', () => {
        stored = { ...stored, status: 'CANCELLED', updatedAt: '2026-11-23T12:03:00Z' };
        return apiError(409, 'invalid_transition', 'an order cannot move from CANCELLED to CANCELLED');
      });
    renderApp('/orders/o-42', api);
    const start = await screen.findByRole('button', { name: 'Cancel order' });
    act(() => start.click());
    act(() => screen.getByRole('button', { name: 'Yes, cancel the order' }).click());
    await waitFor(() => expect(screen.getByTestId('order-status').textContent).toBe('Cancelled'));
    expect(screen.queryByRole('alert')).toBeNull();
  });

  it('does not offer to cancel a shipped order', async () => {
    const api = new FakeApi().on('GET /orders/{id}', { status: 200, body: { ...order, status: 'SHIPPED' } });
    renderApp('/orders/o-42', api);
    await screen.findByRole('heading', { name: 'Your order' });
    await waitFor(() => expect(screen.getByTestId('order-status').textContent).toBe('Shipped'));
    expect(screen.queryByRole('button', { name: 'Cancel order' })).toBeNull();
  });
});
