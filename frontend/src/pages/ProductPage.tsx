import { useCallback, useRef, useState, type FormEvent } from 'react';
import { Link, useParams } from 'react-router';
import type { ApiError } from '../api';
import { useBasket } from '../basket';
import { ErrorMessage, LiveIndicator, Loading, stockLabel } from '../components/Status';
import type { LiveMessage } from '../live';
import { formatMoney } from '../money';
import { toApiError, useLive, useResource, useShop } from '../shop';

export function ProductPage() {
  const { id = '' } = useParams();
  const { api } = useShop();
  const { addItem } = useBasket();
  // Stock pushed while a read is in flight is newer than what the read may return.
  const pushedStock = useRef<number | null>(null);
  const product = useResource(`product:${id}`, async (signal) => {
    pushedStock.current = null;
    const p = await api.getProduct(id, signal);
    return pushedStock.current === null ? p : { ...p, stock: pushedStock.current };
  });
  const [quantity, setQuantity] = useState('1');
  const [adding, setAdding] = useState(false);
  const [added, setAdded] = useState<string | null>(null);
  const [addError, setAddError] = useState<ApiError | null>(null);

  const { setData, reload } = product;
  const onMessage = useCallback(
    (m: LiveMessage) => {
      if (m.type !== 'stock' || m.productId !== id) return;
      pushedStock.current = m.stock;
      setData((p) => ({ ...p, stock: m.stock }));
    },
    [id, setData],
  );
  // Stock may have changed before the socket opened or while it was down.
  const live = useLive(['catalogue'], onMessage, reload);

  if (product.status === 'loading' && !product.data) return <Loading label="Loading product…" />;
  if (!product.data) {
    const notFound = product.error?.code === 'not_found';
    return (
      <section aria-labelledby="product-heading">
        <h1 id="product-heading">{notFound ? 'Product not found' : 'Product'}</h1>
        {notFound ? (
          <p role="alert">There is no product with id “{id}”.</p>
        ) : (
          <ErrorMessage title="Could not load this product." error={product.error ?? 'Unknown error.'} onRetry={reload} />
        )}
        <p>
          <Link to="/">Back to the catalogue</Link>
        </p>
      </section>
    );
  }

  const p = product.data;
  const max = Math.max(1, Math.min(99, p.stock));
  const parsed = Number(quantity);
  const valid = Number.isInteger(parsed) && parsed >= 1 && parsed <= 99;

  const add = async () => {
    if (!valid) return;
    setAdding(true);
    setAdded(null);
    setAddError(null);
    try {
      await addItem(p.id, parsed);
      setAdded(`Added ${parsed} × ${p.name} to your basket.`);
    } catch (err) {
      setAddError(toApiError(err));
    } finally {
      setAdding(false);
    }
  };

  return (
    <article className="product-detail" aria-labelledby="product-heading">
      <p className="breadcrumb">
        <Link to="/">← Catalogue</Link>
      </p>
      <h1 id="product-heading">{p.name}</h1>
      <LiveIndicator state={live} />
      {p.description && <p className="description">{p.description}</p>}
      <p className="price">{formatMoney(p.price, p.currency)}</p>
      <p className={`stock${p.stock <= 0 ? ' sold-out' : ''}`} aria-live="polite" aria-atomic="true" data-testid="stock">
        {stockLabel(p.stock)}
      </p>
      {product.status === 'error' && product.error && (
        <ErrorMessage title="Could not refresh this product." error={product.error} onRetry={reload} />
      )}
      <form
        className="add-form"
        onSubmit={(e: FormEvent) => {
          e.preventDefault();
          void add();
        }}
        noValidate
      >
        <label htmlFor="quantity">Quantity</label>
        <input
          id="quantity"
          name="quantity"
          type="number"
          inputMode="numeric"
          min={1}
          max={max}
          value={quantity}
          onChange={(e) => setQuantity(e.target.value)}
          aria-invalid={!valid}
          aria-describedby={valid ? undefined : 'quantity-error'}
        />
        <button type="submit" disabled={adding || !valid || p.stock <= 0}>
          {adding ? 'Adding…' : p.stock <= 0 ? 'Sold out' : 'Add to basket'}
        </button>
        {!valid && (
          <p id="quantity-error" className="field-error">
            Enter a quantity from 1 to 99.
          </p>
        )}
      </form>
      <div aria-live="polite" className="notice-area">
        {added && (
          <p className="notice">
            {added} <Link to="/basket">View basket</Link>
          </p>
        )}
      </div>
      {addError && (
        <ErrorMessage
          title="Could not add to your basket."
          error={addError}
          onRetry={addError.retryable ? () => void add() : undefined}
        />
      )}
    </article>
  );
}
