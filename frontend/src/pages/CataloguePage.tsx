import { useCallback, useEffect, useRef, useState } from 'react';
import { Link } from 'react-router';
import type { Product } from '../api';
import { ErrorMessage, LiveIndicator, Loading, stockClass, stockLabel, usePageTitle } from '../components/Status';
import type { LiveMessage } from '../live';
import { formatMoney } from '../money';
import { toApiError, useLive, useShop } from '../shop';
import type { ApiError } from '../api';

const PAGE_SIZE = 20;

interface CatalogueState {
  items: Product[];
  next: string | null;
  status: 'loading' | 'ready' | 'error';
  error: ApiError | null;
  /** Loading another page (the list stays on screen). */
  more: boolean;
}

export function CataloguePage() {
  const { api } = useShop();
  const [state, setState] = useState<CatalogueState>({
    items: [],
    next: null,
    status: 'loading',
    error: null,
    more: false,
  });
  const loaded = useRef(0);
  // Stock pushed while a read is in flight is newer than what the read may return.
  const pushedDuringLoad = useRef(new Map<string, number>());
  // Only the latest read may set the list: an earlier one finishing late is older.
  const latestLoad = useRef(0);
  const [changed, setChanged] = useState<Record<string, number>>({});

  /** Loads from the first page until at least `atLeast` products (or the end). */
  const loadFromStart = useCallback(
    async (atLeast: number, signal?: AbortSignal) => {
      setState((s) => ({ ...s, status: s.items.length ? s.status : 'loading', error: null }));
      pushedDuringLoad.current = new Map();
      const load = ++latestLoad.current;
      try {
        let items: Product[] = [];
        let next: string | null = null;
        do {
          const page = await api.listProducts({ limit: PAGE_SIZE, next }, signal);
          items = items.concat(page.items);
          next = page.next ?? null;
        } while (next && items.length < atLeast);
        if (signal?.aborted || load !== latestLoad.current) return;
        const pushed = pushedDuringLoad.current;
        items = items.map((p) => (pushed.has(p.id) ? { ...p, stock: pushed.get(p.id) ?? p.stock } : p));
        loaded.current = items.length;
        setState({ items, next, status: 'ready', error: null, more: false });
      } catch (err) {
        if (signal?.aborted || load !== latestLoad.current) return;
        setState((s) => ({ ...s, status: 'error', error: toApiError(err), more: false }));
      }
    },
    [api],
  );

  useEffect(() => {
    const controller = new AbortController();
    void loadFromStart(PAGE_SIZE, controller.signal);
    return () => controller.abort();
  }, [loadFromStart]);

  const loadMore = async () => {
    if (!state.next) return;
    setState((s) => ({ ...s, more: true, error: null }));
    try {
      const page = await api.listProducts({ limit: PAGE_SIZE, next: state.next });
      setState((s) => {
        const seen = new Set(s.items.map((p) => p.id));
        const items = s.items.concat(page.items.filter((p) => !seen.has(p.id)));
        loaded.current = items.length;
        return { ...s, items, next: page.next ?? null, more: false };
      });
    } catch (err) {
      setState((s) => ({ ...s, more: false, status: 'error', error: toApiError(err) }));
    }
  };

  const onMessage = useCallback((message: LiveMessage) => {
    if (message.type !== 'stock') return;
    pushedDuringLoad.current.set(message.productId, message.stock);
    setState((s) => ({
      ...s,
      items: s.items.map((p) => (p.id === message.productId ? { ...p, stock: message.stock } : p)),
    }));
    setChanged((c) => ({ ...c, [message.productId]: (c[message.productId] ?? 0) + 1 }));
  }, []);

  // Pushes flow only while the socket is open: whatever changed before it
  // opened (or while it was down) is read again.
  const live = useLive(['catalogue'], onMessage, () => void loadFromStart(Math.max(loaded.current, PAGE_SIZE)));
  usePageTitle('Catalogue');

  // Search and the category filter look through the whole catalogue:
  // either loads every page.
  const [query, setQuery] = useState('');
  const [category, setCategory] = useState('');
  const searching = query.trim() !== '' || category !== '';
  useEffect(() => {
    if (searching && state.next && state.status === 'ready' && !state.more) {
      void loadFromStart(Number.MAX_SAFE_INTEGER);
    }
  }, [searching, state.next, state.status, state.more, loadFromStart]);
  const words = query.trim().toLocaleLowerCase().split(/\s+/).filter(Boolean);
  const shown = searching
    ? state.items.filter((p) => {
        if (category && p.category !== category) return false;
        const text = `${p.name} ${p.description ?? ''}`.toLocaleLowerCase();
        return words.every((w) => text.includes(w));
      })
    : state.items;
  const categories = [...new Set(state.items.map((p) => p.category ?? '').filter(Boolean))].sort((a, b) =>
    a.localeCompare(b),
  );

  return (
    <section aria-labelledby="catalogue-heading">
      <div className="page-head">
        <h1 id="catalogue-heading">Catalogue</h1>
        <LiveIndicator state={live} />
      </div>
      <form className="search" role="search" onSubmit={(e) => e.preventDefault()}>
        <label htmlFor="catalogue-search">Search products</label>
        <input
          id="catalogue-search"
          type="search"
          value={query}
          onChange={(e) => setQuery(e.target.value)}
          aria-describedby="search-count"
        />
        {(categories.length > 0 || category) && (
          <>
            <label htmlFor="catalogue-category">Category</label>
            <select id="catalogue-category" value={category} onChange={(e) => setCategory(e.target.value)}>
              <option value="">All categories</option>
              {categories.map((c) => (
                <option key={c} value={c}>
                  {c}
                </option>
              ))}
            </select>
          </>
        )}
      </form>
      <p id="search-count" className="visually-hidden" aria-live="polite">
        {searching && state.status === 'ready' ? `${shown.length} ${shown.length === 1 ? 'product' : 'products'} found.` : ''}
      </p>
      {state.status === 'loading' && state.items.length === 0 && <Loading label="Loading products…" />}
      {state.status === 'error' && (
        <ErrorMessage
          title="Could not load the products."
          error={state.error ?? 'Unknown error.'}
          context="catalogue"
          takeFocus={state.items.length === 0}
          onRetry={() =>
            state.items.length && state.next ? void loadMore() : void loadFromStart(Math.max(loaded.current, PAGE_SIZE))
          }
        />
      )}
      {state.status === 'ready' && state.items.length === 0 && <p>No products yet.</p>}
      {searching && state.status === 'ready' && state.items.length > 0 && shown.length === 0 && (
        <p>{query.trim() ? `No products match “${query.trim()}”${category ? ` in ${category}` : ''}.` : `No products in ${category}.`}</p>
      )}
      {shown.length > 0 && (
        <ul className="product-grid" aria-label="Products">
          {shown.map((p) => (
            <li key={p.id}>
              <ProductCard product={p} pulse={changed[p.id] ?? 0} />
            </li>
          ))}
        </ul>
      )}
      {!searching && state.next && state.status !== 'error' && (
        <button type="button" className="secondary" onClick={() => void loadMore()} disabled={state.more}>
          {state.more ? 'Loading more…' : 'Show more products'}
        </button>
      )}
    </section>
  );
}

function ProductCard({ product, pulse }: { product: Product; pulse: number }) {
  return (
    <article className="product-card" aria-labelledby={`product-${product.id}`} data-product-id={product.id}>
      <h2 id={`product-${product.id}`}>
        <Link to={`/products/${encodeURIComponent(product.id)}`}>{product.name}</Link>
      </h2>
      <div className="product-image placeholder" aria-hidden="true" />
      {product.description && <p className="description">{product.description}</p>}
      <p className="price">{formatMoney(product.price, product.currency)}</p>
      {/* Not a live region: a screen reader would read out every card's
          change at once. The product page announces its own. */}
      <p className={`${stockClass(product.stock)}${pulse ? ' pulse' : ''}`} key={pulse} data-testid="stock">
        {stockLabel(product.stock)}
      </p>
    </article>
  );
}
