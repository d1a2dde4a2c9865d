import { act, fireEvent, screen, waitFor, within } from '@testing-library/react';
import { beforeEach, describe, expect, it } from 'vitest';
import { FakeApi, FakeWebSocket, product, renderApp } from '../test/fakes';

describe('catalogue', () => {
  beforeEach(() => {
    FakeWebSocket.reset();
    localStorage.clear();
  });

  function card(name: string) {
    const heading = screen.getByRole('heading', { name });
    const article = heading.closest('article');
    if (!article) throw new Error(`no card for ${name}`);
    return within(article);
  }

  it('renders the products with price and stock, and applies a stock push live', async () => {
    let stock = 12;
    const api = new FakeApi().on('GET /products', () => ({
      status: 200,
      body: { items: [product('p1', 'Blue mug', 1250, stock), product('p2', 'Teapot', 3000, 0)], next: null },
    }));
    renderApp('/', api);

    expect(screen.getByRole('status').textContent).toContain('Loading products');
    expect(await screen.findByRole('heading', { name: 'Blue mug' })).toBeTruthy();
    expect(card('Blue mug').getByText('€12.50')).toBeTruthy();
    expect(card('Blue mug').getByTestId('stock').textContent).toContain('12 in stock');
    expect(card('Teapot').getByTestId('stock').textContent).toContain('Sold out');
    expect(screen.getByRole('link', { name: 'Blue mug' }).getAttribute('href')).toBe('/products/p1');

    const ws = FakeWebSocket.latest();
    expect(ws.url).toBe('ws://ws.test/local?topics=catalogue');
    act(() => ws.open());
    await waitFor(() => expect(screen.getByText('Updates automatically')).toBeTruthy());
    act(() => ws.push({ type: 'stock', productId: 'p1', stock: 3 }));
    expect(card('Blue mug').getByTestId('stock').textContent).toContain('Only 3 left');
    // Bug (issue #19): every card's change was announced at once; the catalogue
    // announces none of them (a product page announces its own).
    expect(card('Blue mug').getByTestId('stock').closest('[aria-live]')).toBeNull();
    // Bug (issue #19): running low looked like plenty.
    expect(card('Blue mug').getByTestId('stock').className).toContain('low-stock');
    expect(card('Teapot').getByTestId('stock').textContent).toContain('Sold out');

    // After a drop the list is read again, since pushes may have been missed.
    stock = 7;
    const before = api.callsTo('GET', '/products').length;
    act(() => ws.drop());
    await waitFor(() => expect(FakeWebSocket.instances).toHaveLength(2));
    act(() => FakeWebSocket.latest().open());
    await waitFor(() => expect(card('Blue mug').getByTestId('stock').textContent).toContain('7 in stock'));
    expect(api.callsTo('GET', '/products').length).toBeGreaterThan(before);
  });

  it('shows an error with a retry that loads the products', async () => {
    let fail = true;
    const api = new FakeApi().on('GET /products', () =>
      fail
        ? { status: 500, body: { error: { code: 'internal', message: 'storage failure' } } }
        : { status: 200, body: { items: [product('p1', 'Blue mug', 1250, 4)], next: null } },
    );
    renderApp('/', api);
    const alert = await screen.findByRole('alert');
    expect(alert.textContent).toContain('Could not load the products.');
    // Bug (issue #19): the server's own message reached customers.
    expect(alert.textContent).toContain('Something went wrong on our side. Please try again in a moment.');
    expect(alert.textContent).not.toContain('storage failure');
    expect(document.activeElement).toBe(alert);
    fail = false;
    act(() => within(alert).getByRole('button', { name: 'Try again' }).click());
    expect(await screen.findByRole('heading', { name: 'Blue mug' })).toBeTruthy();
    expect(screen.queryByRole('alert')).toBeNull();
  });

  it('pages through the catalogue with the next cursor', async () => {
    const first = Array.from({ length: 20 }, (_, i) => product(`p${i}`, `Mug ${i}`, 1000 + i, 4));
    const api = new FakeApi().on('GET /products', (call) => {
      expect(call.query.get('limit')).toBe('20');
      return call.query.get('next') === 'c2'
        ? { status: 200, body: { items: [product('p20', 'Teapot', 3000, 9)], next: null } }
        : { status: 200, body: { items: first, next: 'c2' } };
    });
    renderApp('/', api);
    const more = await screen.findByRole('button', { name: 'Show more products' });
    act(() => more.click());
    expect(await screen.findByRole('heading', { name: 'Teapot' })).toBeTruthy();
    const list = screen.getByRole('list', { name: 'Products' });
    expect(within(list).getAllByRole('heading')).toHaveLength(21);
    expect(screen.queryByRole('button', { name: 'Show more products' })).toBeNull();
  });

  it('keeps a stock push that arrives while the list is being read again', async () => {
    let release: (() => void) | null = null;
    let reads = 0;
    const api = new FakeApi().on('GET /products', async () => {
      reads += 1;
      // The second read (on socket open) is slow and returns what it read before the push.
      if (reads === 2) await new Promise<void>((resolve) => (release = resolve));
      return { status: 200, body: { items: [product('p1', 'Blue mug', 1250, 12)], next: null } };
    });
    renderApp('/', api);
    await screen.findByRole('heading', { name: 'Blue mug' });
    act(() => FakeWebSocket.latest().open());
    await waitFor(() => expect(reads).toBe(2));
    act(() => FakeWebSocket.latest().push({ type: 'stock', productId: 'p1', stock: 3 }));
    expect(card('Blue mug').getByTestId('stock').textContent).toContain('Only 3 left');
    await act(async () => release?.());
    await waitFor(() => expect(screen.getByText('Updates automatically')).toBeTruthy());
    expect(card('Blue mug').getByTestId('stock').textContent).toContain('Only 3 left');
  });

  // Issue #19: a catalogue that can be searched.
  it('searches the whole catalogue by name and description', async () => {
    const first = Array.from({ length: 20 }, (_, i) => product(`p${i}`, `Mug ${i}`, 1000 + i, 4));
    const api = new FakeApi().on('GET /products', (call) =>
      call.query.get('next') === 'c1'
        ? { status: 200, body: { items: [{ ...product('t1', 'Cast iron teapot', 3900, 2), description: 'Holds 1 l of tea' }], next: null } }
        : { status: 200, body: { items: first, next: 'c1' } },
    );
    renderApp('/', api);
    await screen.findByRole('heading', { name: 'Mug 0' });
    expect(document.title).toBe('Catalogue · WooCom');
    fireEvent.change(screen.getByRole('searchbox', { name: 'Search products' }), { target: { value: 'TEA' } });
    expect(await screen.findByRole('heading', { name: 'Cast iron teapot' })).toBeTruthy();
    expect(screen.queryByRole('heading', { name: 'Mug 0' })).toBeNull();
    await waitFor(() => expect(screen.getByText('1 product found.')).toBeTruthy());
    fireEvent.change(screen.getByRole('searchbox', { name: 'Search products' }), { target: { value: 'saucer' } });
    expect(screen.getByText('No products match “saucer”.')).toBeTruthy();
  });

  // Issue #19: a catalogue that can be filtered by category.
  it('filters by category, with the search', async () => {
    const items = [
      { ...product('t1', 'Sencha', 900, 10), category: 'Tea' },
      { ...product('t2', 'Assam', 800, 10), category: 'Tea' },
      { ...product('c1', 'Espresso cups', 2400, 10), category: 'Tableware' },
      product('x1', 'Gift card', 2500, 10),
    ];
    const api = new FakeApi().on('GET /products', { status: 200, body: { items, next: null } });
    renderApp('/', api);
    await screen.findByRole('heading', { name: 'Sencha' });
    const select = screen.getByRole('combobox', { name: 'Category' }) as HTMLSelectElement;
    expect([...select.options].map((o) => o.textContent)).toEqual(['All categories', 'Tableware', 'Tea']);
    fireEvent.change(select, { target: { value: 'Tea' } });
    expect(screen.getAllByRole('article').map((a) => a.getAttribute('aria-labelledby'))).toEqual(['product-t1', 'product-t2']);
    fireEvent.change(screen.getByRole('searchbox', { name: 'Search products' }), { target: { value: 'cups' } });
    expect(screen.getByText('No products match “cups” in Tea.')).toBeTruthy();
    fireEvent.change(select, { target: { value: '' } });
    expect(screen.getAllByRole('article')).toHaveLength(1);
  });
});
