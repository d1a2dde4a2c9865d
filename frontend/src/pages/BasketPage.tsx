import { useRef, useState, type KeyboardEvent } from 'react';
import { Link } from 'react-router';
import type { ApiError, Basket, Line } from '../api';
import { useBasket } from '../basket';
import { ErrorMessage, Loading, stockClass, stockLabel, usePageTitle } from '../components/Status';
import { formatMoney } from '../money';
import { toApiError } from '../shop';
import { lineLimit, useStock } from '../stock';

export function BasketPage() {
  const { basket, status, error, reload, checkedOutElsewhere } = useBasket();
  const [announcement, setAnnouncement] = useState('');
  const heading = useRef<HTMLHeadingElement>(null);
  const { stock } = useStock(basket?.items.map((l) => l.productId) ?? []);
  usePageTitle('Basket');

  if (status === 'loading' && !basket) return <Loading label="Loading your basket…" />;

  const short = basket?.items.filter((l) => stock[l.productId] !== undefined && l.quantity > (stock[l.productId] ?? 0)) ?? [];

  return (
    <section aria-labelledby="basket-heading">
      <h1 id="basket-heading" tabIndex={-1} ref={heading}>
        Basket
      </h1>
      {checkedOutElsewhere && (
        <div className="notice" role="status" data-testid="checked-out-elsewhere">
          <p>
            This basket was checked out in another tab or window.{' '}
            <Link to={`/orders/${encodeURIComponent(checkedOutElsewhere)}`}>See that order</Link>
          </p>
        </div>
      )}
      {status === 'error' && error && (
        <ErrorMessage title="Could not load your basket." error={error} context="basket" onRetry={reload} />
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
          {/* Stock that falls below a line concerns this page: announced. */}
          <div aria-live="polite" aria-atomic="true">
            {short.length > 0 && (
              <p className="field-error" data-testid="basket-short">
                {short.length === 1
                  ? 'One product has less in stock than your basket holds.'
                  : `${short.length} products have less in stock than your basket holds.`}{' '}
                Reduce them before you check out.
              </p>
            )}
          </div>
          <ul className="basket-lines" aria-label="Items in your basket">
            {basket.items.map((line) => (
              <li key={line.productId}>
                <BasketLine
                  line={line}
                  currency={basket.currency}
                  stock={stock[line.productId]}
                  onChanged={setAnnouncement}
                  onRemoved={() => heading.current?.focus()}
                />
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
  stock,
  onChanged,
  onRemoved,
}: {
  line: Line;
  currency: string;
  /** Units in stock, live; undefined until read. */
  stock: number | undefined;
  onChanged: (message: string) => void;
  /** The line is gone: focus goes somewhere that stays. */
  onRemoved: () => void;
}) {
  const { setQuantity, removeItem } = useBasket();
  // What the user is typing; null shows the basket's quantity.
  const [draft, setDraft] = useState<string | null>(null);
  const [draftProblem, setDraftProblem] = useState<string | null>(null);
  const [pending, setPending] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  const [retry, setRetry] = useState<(() => void) | null>(null);
  const inputId = `qty-${line.productId}`;
  const problemId = `qty-problem-${line.productId}`;
  const limit = lineLimit(stock);
  const tooMany = stock !== undefined && line.quantity > stock;

  const run = async (action: () => Promise<Basket>, done: (b: Basket) => string, removes = false) => {
    setPending(true);
    setError(null);
    setRetry(null);
    try {
      const b = await action();
      setDraft(null);
      setDraftProblem(null);
      onChanged(`${done(b)} ${describe(b)}`);
      if (removes) onRemoved();
    } catch (err) {
      const e = toApiError(err);
      setError(e);
      if (e.retryable) setRetry(() => () => void run(action, done, removes));
    } finally {
      setPending(false);
    }
  };

  const change = (quantity: number) => {
    if (pending) return;
    if (quantity === line.quantity) {
      setDraft(null);
      setDraftProblem(null);
      return;
    }
    if (quantity === 0) return remove();
    void run(
      () => setQuantity(line.productId, quantity),
      () => `${line.name}: quantity ${quantity}.`,
    );
  };
  const remove = () => {
    if (pending) return;
    void run(() => removeItem(line.productId), () => `${line.name} removed.`, true);
  };

  const commitDraft = () => {
    if (draft === null) return;
    const n = Number(draft);
    if (draft.trim() === '' || !Number.isInteger(n) || n < 0) {
      setDraftProblem('Enter a whole number, or 0 to remove it.');
      return;
    }
    if (n > line.quantity && n > limit) {
      setDraftProblem(
        limit < 99
          ? `Only ${limit} ${limit === 1 ? 'is' : 'are'} in stock: choose ${limit} or fewer.`
          : 'You can have at most 99 of one product.',
      );
      return;
    }
    setDraftProblem(null);
    change(n);
  };

  const canIncrease = !pending && line.quantity < limit;
  const canDecrease = !pending && line.quantity > 1;

  return (
    <article
      className={`basket-line${tooMany ? ' short' : ''}`}
      aria-labelledby={`line-${line.productId}`}
      aria-busy={pending}
      data-product-id={line.productId}
    >
      <h2 id={`line-${line.productId}`}>
        <Link to={`/products/${encodeURIComponent(line.productId)}`}>{line.name}</Link>
      </h2>
      <p className="unit-price">{formatMoney(line.unitPrice, currency)} each</p>
      {stock !== undefined && (
        <p className={stockClass(stock)} data-testid="line-stock">
          {stockLabel(stock)}
        </p>
      )}
      {/* Buttons stay focusable while a change runs or at a limit
          (aria-disabled, not disabled), so focus never falls to the page. */}
      <div className="quantity" role="group" aria-label={`Change quantity of ${line.name}`}>
        <button
          type="button"
          className="stepper"
          aria-label={`Decrease quantity of ${line.name}`}
          aria-disabled={!canDecrease}
          onClick={() => canDecrease && change(line.quantity - 1)}
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
          min={0}
          max={Math.max(limit, line.quantity)}
          value={draft ?? String(line.quantity)}
          readOnly={pending}
          aria-invalid={draftProblem ? true : undefined}
          aria-describedby={draftProblem ? problemId : undefined}
          onChange={(e) => {
            setDraft(e.target.value);
            setDraftProblem(null);
          }}
          onBlur={commitDraft}
          onKeyDown={(e: KeyboardEvent<HTMLInputElement>) => {
            if (e.key === 'Enter') {
              e.preventDefault();
              commitDraft();
            } else if (e.key === 'Escape') {
              setDraft(null);
              setDraftProblem(null);
            }
          }}
        />
        <button
          type="button"
          className="stepper"
          aria-label={`Increase quantity of ${line.name}`}
          aria-disabled={!canIncrease}
          onClick={() => canIncrease && change(line.quantity + 1)}
        >
          +
        </button>
      </div>
      {draftProblem && (
        <p id={problemId} className="field-error" role="alert">
          {draftProblem}
        </p>
      )}
      {tooMany && (
        <div className="line-short" data-testid="line-short">
          <p className="field-error">
            {stock === 0
              ? `${line.name} is sold out.`
              : `Only ${stock} ${stock === 1 ? 'is' : 'are'} left; your basket holds ${line.quantity}.`}
          </p>
          {stock !== undefined && stock > 0 ? (
            <button type="button" className="secondary" onClick={() => change(stock)}>
              Reduce to {stock}
            </button>
          ) : null}
        </div>
      )}
      <p className="line-total">
        <span className="visually-hidden">Line total: </span>
        {formatMoney(line.lineTotal, currency)}
      </p>
      <button
        type="button"
        className="link-button"
        aria-label={`Remove ${line.name}`}
        aria-disabled={pending}
        onClick={remove}
      >
        Remove
      </button>
      {error && (
        <ErrorMessage
          title={`Could not change ${line.name}.`}
          error={error}
          context="basket"
          onRetry={retry ?? undefined}
        />
      )}
    </article>
  );
}
