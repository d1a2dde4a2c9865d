import { useState, type KeyboardEvent } from 'react';
import { Link } from 'react-router';
import type { ApiError, Basket, Line } from '../api';
import { useBasket } from '../basket';
import { ErrorMessage, Loading } from '../components/Status';
import { formatMoney } from '../money';
import { toApiError } from '../shop';

export function BasketPage() {
  const { basket, status, error, reload } = useBasket();
  const [announcement, setAnnouncement] = useState('');

  if (status === 'loading' && !basket) return <Loading label="Loading your basket…" />;

  return (
    <section aria-labelledby="basket-heading">
      <h1 id="basket-heading">Basket</h1>
      {status === 'error' && error && (
        <ErrorMessage title="Could not load your basket." error={error} onRetry={reload} />
      )}
      <p className="visually-hidden" aria-live="polite" aria-atomic="true">
        {announcement}
      </p>
      {status !== 'error' && (!basket || basket.items.length === 0) && (
        <p>
          Your basket is empty. <Link to="/">Browse the catalogue</Link>
        </p>
      )}
      {basket && basket.items.length > 0 && (
        <>
          <ul className="basket-lines" aria-label="Items in your basket">
            {basket.items.map((line) => (
              <li key={line.productId}>
                <BasketLine line={line} currency={basket.currency} onChanged={setAnnouncement} />
              </li>
            ))}
          </ul>
          <p className="total">
            Total <strong data-testid="basket-total">{formatMoney(basket.total, basket.currency)}</strong>
          </p>
          <p>
            <Link className="button" to="/checkout">
              Check out
            </Link>
          </p>
        </>
      )}
    </section>
  );
}

function describe(basket: Basket): string {
  return `Total ${formatMoney(basket.total, basket.currency)}.`;
}

function BasketLine({
  line,
  currency,
  onChanged,
}: {
  line: Line;
  currency: string;
  onChanged: (message: string) => void;
}) {
  const { setQuantity, removeItem } = useBasket();
  // What the user is typing; null shows the basket's quantity.
  const [draft, setDraft] = useState<string | null>(null);
  const [pending, setPending] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  const [retry, setRetry] = useState<(() => void) | null>(null);
  const inputId = `qty-${line.productId}`;

  const run = async (action: () => Promise<Basket>, done: (b: Basket) => string) => {
    setPending(true);
    setError(null);
    setRetry(null);
    try {
      const b = await action();
      onChanged(`${done(b)} ${describe(b)}`);
    } catch (err) {
      const e = toApiError(err);
      setError(e);
      if (e.retryable) setRetry(() => () => void run(action, done));
    } finally {
      setPending(false);
      setDraft(null);
    }
  };

  const change = (quantity: number) => {
    if (quantity === line.quantity) return setDraft(null);
    if (quantity === 0) return remove();
    void run(
      () => setQuantity(line.productId, quantity),
      () => `${line.name}: quantity ${quantity}.`,
    );
  };
  const remove = () => void run(() => removeItem(line.productId), () => `${line.name} removed.`);

  const commitDraft = () => {
    if (draft === null) return;
    const n = Number(draft);
    if (draft.trim() === '' || !Number.isInteger(n) || n < 0 || n > 99) {
      setDraft(null);
      onChanged(`Quantity must be a whole number from 1 to 99.`);
      return;
    }
    change(n);
  };

  return (
    <article className="basket-line" aria-labelledby={`line-${line.productId}`} aria-busy={pending}>
      <h2 id={`line-${line.productId}`}>
        <Link to={`/products/${encodeURIComponent(line.productId)}`}>{line.name}</Link>
      </h2>
      <p className="unit-price">{formatMoney(line.unitPrice, currency)} each</p>
      <div className="quantity" role="group" aria-label={`Change quantity of ${line.name}`}>
        <button
          type="button"
          className="stepper"
          aria-label={`Decrease quantity of ${line.name}`}
          disabled={pending || line.quantity <= 1}
          onClick={() => change(line.quantity - 1)}
        >
          −
        </button>
        <label className="visually-hidden" htmlFor={inputId}>
          Quantity of {line.name}
        </label>
        <input
          id={inputId}
          type="number"
          inputMode="numeric"
          min={1}
          max={99}
          value={draft ?? String(line.quantity)}
          disabled={pending}
          onChange={(e) => setDraft(e.target.value)}
          onBlur={commitDraft}
          onKeyDown={(e: KeyboardEvent<HTMLInputElement>) => {
            if (e.key === 'Enter') {
              e.preventDefault();
              commitDraft();
            }
          }}
        />
        <button
          type="button"
          className="stepper"
          aria-label={`Increase quantity of ${line.name}`}
          disabled={pending || line.quantity >= 99}
          onClick={() => change(line.quantity + 1)}
        >
          +
        </button>
      </div>
      <p className="line-total">
        <span className="visually-hidden">Line total: </span>
        {formatMoney(line.lineTotal, currency)}
      </p>
      <button
        type="button"
        className="link-button"
        aria-label={`Remove ${line.name}`}
        disabled={pending}
        onClick={remove}
      >
        Remove
      </button>
      {error && (
        <ErrorMessage title={`Could not change ${line.name}.`} error={error} onRetry={retry ?? undefined} />
      )}
    </article>
  );
}
