import { useCallback, useRef, useState, type FormEvent } from 'react';
import { Link, useParams } from 'react-router';
import type { ApiError } from '../api';
import { useBasket } from '../basket';
import { ErrorMessage, LiveIndicator, Loading, stockClass, stockLabel, usePageTitle } from '../components/Status';
import type { LiveMessage } from '../live';
import { formatMoney } from '../money';
import { toApiError, useLive, useResource, useShop } from '../shop';

export function ProductPage() {
  const { id = '' } = useParams();
  const { api } = useShop();
  const { addItem, basket } = useBasket();
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
  const [touched, setTouched] = useState(false);

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
  usePageTitle(product.data?.name ?? (product.error?.code === 'not_found' ? 'Product not found' : 'Product'));

  if (product.status === 'loading' && !product.data) return <Loading label="Loading product…" />;
  if (!product.data) {
    const notFound = product.error?.code === 'not_found';
    return (
      <section aria-labelledby="product-heading">
        <h1 id="product-heading">{notFound ? 'Product not found' : 'Product'}</h1>
        {notFound ? (
          <p role="alert">We could not find this product. It may have left the catalogue.</p>
        ) : (
          <ErrorMessage title="Could not load this product." error={product.error} context="product" onRetry={reload} />
        )}
        <p>
          <Link to="/">Back to the catalogue</Link>
        </p>
      </section>
    );
  }

  const p = product.data;
  const inBasket = basket?.items.find((l) => l.productId === p.id)?.quantity ?? 0;
  // What one more add may take: what is in stock (and the API's 99 per
  // line), less what the basket already holds.
  const available = Math.max(0, Math.min(99, p.stock) - inBasket);
  const parsed = Number(quantity);
  const whole = quantity.trim() !== '' && Number.isInteger(parsed) && parsed >= 1;
  const quantityProblem =
    p.stock <= 0
      ? null
      : !whole
        ? 'Enter a whole number, 1 or more.'
        : available === 0
          ? inBasket > 0
            ? `Your basket already holds all ${inBasket} we have.`
            : 'There is none left to add.'
          : parsed > available
            ? inBasket > 0
              ? `You can add ${available} more: ${p.stock} in stock, ${inBasket} in your basket.`
              : `Only ${available} ${available === 1 ? 'is' : 'are'} available: choose ${available} or fewer.`
            : null;
  const valid = quantityProblem === null && p.stock > 0;

  const add = async () => {
    if (adding) return;
    if (!valid) {
      setTouched(true);
      return;
    }
    setAdding(true);
    setAdded(null);
    setAddError(null);
    try {
      await addItem(p.id, parsed);
      setAdded(`Added ${parsed} × ${p.name} to your basket.`);
      setQuantity('1');
      setTouched(false);
    } catch (err) {
      const e = toApiError(err);
      setAddError(e);
      // Refused for stock: show what is there now.
      if (e.code === 'sold_out') reload();
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
      <div className="product-image placeholder" aria-hidden="true" />
      {p.description && <p className="description">{p.description}</p>}
      <p className="price">{formatMoney(p.price, p.currency)}</p>
      {/* The one stock this page is about: its changes are announced. */}
      <p className={stockClass(p.stock)} aria-live="polite" aria-atomic="true" data-testid="stock">
        {stockLabel(p.stock)}
      </p>
      {inBasket > 0 && (
        <p className="in-basket" data-testid="in-basket">
          In your basket: {inBasket}
        </p>
      )}
      {product.status === 'error' && product.error && (
        <ErrorMessage
          title="Could not refresh this product."
          error={product.error}
          context="product"
          onRetry={reload}
          takeFocus={false}
        />
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
          max={Math.max(1, available)}
          value={quantity}
          onChange={(e) => {
            setQuantity(e.target.value);
            setTouched(true);
          }}
          aria-invalid={touched && quantityProblem ? true : undefined}
          aria-describedby={quantityProblem ? 'quantity-help' : undefined}
        />
        <button type="submit" aria-disabled={adding || p.stock <= 0} disabled={p.stock <= 0}>
          {adding ? 'Adding…' : p.stock <= 0 ? 'Sold out' : 'Add to basket'}
        </button>
        {quantityProblem && (
          <p id="quantity-help" className={touched ? 'field-error' : 'field-help'} role={touched ? 'alert' : undefined}>
            {quantityProblem}
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
          context="product"
          onRetry={addError.retryable ? () => void add() : undefined}
        />
      )}
    </article>
  );
}
