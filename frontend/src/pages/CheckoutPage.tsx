import { useRef, useState, type FormEvent } from 'react';
import { Link, useNavigate } from 'react-router';
import type { ApiError, Basket } from '../api';
import { useBasket } from '../basket';
import { ErrorMessage, Loading } from '../components/Status';
import { formatMoney } from '../money';
import { toApiError, useShop } from '../shop';

const KEY_PREFIX = 'woocom.checkoutKey.';

function newKey(): string {
  if (typeof crypto !== 'undefined' && typeof crypto.randomUUID === 'function') return crypto.randomUUID();
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}-${Math.random().toString(36).slice(2)}`;
}

/**
 * The idempotency key of this checkout attempt. Kept in session storage per
 * basket so that a retry, even after a reload, sends the same key and the
 * server answers with the order it may already have placed.
 */
function attemptKey(basketId: string, fresh = false): string {
  const storageKey = KEY_PREFIX + basketId;
  try {
    const existing = fresh ? null : sessionStorage.getItem(storageKey);
    if (existing) return existing;
    const key = newKey();
    sessionStorage.setItem(storageKey, key);
    return key;
  } catch {
    return newKey();
  }
}

function dropKey(basketId: string): void {
  try {
    sessionStorage.removeItem(KEY_PREFIX + basketId);
  } catch {
    /* nothing stored */
  }
}

/** "Blue mug is sold out." / "Only 2 of Blue mug are left." from a sold_out error. */
export function soldOutMessages(error: ApiError, basket: Basket | null): string[] {
  const messages: string[] = [];
  for (const [productId, left] of Object.entries(error.fields)) {
    const line = basket?.items.find((l) => l.productId === productId);
    if (!line) continue;
    const n = Number(left);
    messages.push(
      Number.isFinite(n) && n > 0
        ? `Only ${n} of ${line.name} ${n === 1 ? 'is' : 'are'} left (you asked for ${line.quantity}).`
        : `${line.name} is sold out.`,
    );
  }
  return messages;
}

export function CheckoutPage() {
  const { api } = useShop();
  const { basket, status, error: basketError, reload, forget } = useBasket();
  const navigate = useNavigate();
  const [customerRef, setCustomerRef] = useState('');
  const [touched, setTouched] = useState(false);
  const [placing, setPlacing] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  const keyRef = useRef<string | null>(null);

  if (status === 'loading' && !basket) return <Loading label="Loading your basket…" />;
  if (status === 'error' && basketError && !basket) {
    return (
      <section aria-labelledby="checkout-heading">
        <h1 id="checkout-heading">Checkout</h1>
        <ErrorMessage title="Could not load your basket." error={basketError} onRetry={reload} />
      </section>
    );
  }
  if (!basket || basket.items.length === 0) {
    return (
      <section aria-labelledby="checkout-heading">
        <h1 id="checkout-heading">Checkout</h1>
        <p>
          Your basket is empty. <Link to="/">Browse the catalogue</Link>
        </p>
      </section>
    );
  }

  const ref = customerRef.trim();
  const refProblem =
    ref === '' ? 'Enter your email or customer reference.' : ref.length > 200 ? 'Use at most 200 characters.' : null;
  const serverFieldProblem =
    error?.code === 'validation_failed' || error?.code === 'bad_request'
      ? (error.fields.customerRef as string | undefined)
      : undefined;
  const fieldProblem = (touched ? refProblem : null) ?? serverFieldProblem ?? null;

  const place = async () => {
    setTouched(true);
    if (refProblem) return;
    keyRef.current ??= attemptKey(basket.id);
    const clientKey = keyRef.current;
    setPlacing(true);
    setError(null);
    try {
      const order = await api.placeOrder({ basketId: basket.id, customerRef: ref, clientKey });
      dropKey(basket.id);
      forget();
      // The order page shows the placed order at once, then follows it.
      navigate(`/orders/${encodeURIComponent(order.id)}`, { state: { order } });
    } catch (err) {
      const e = toApiError(err);
      if (e.code === 'basket_closed') {
        // Checked out already (another tab, or an answer that got lost): find that order.
        try {
          const orders = await api.listOrders({ basketId: basket.id });
          const order = orders.items[0];
          if (order) {
            dropKey(basket.id);
            forget();
            navigate(`/orders/${encodeURIComponent(order.id)}`, { state: { order } });
            return;
          }
        } catch {
          /* fall through to the error */
        }
      }
      // A definite "no" ends this attempt; after a lost answer the next try reuses the key.
      if (!e.retryable) {
        dropKey(basket.id);
        keyRef.current = null;
      }
      setError(e);
      setPlacing(false);
    }
  };

  const soldOut = error?.code === 'sold_out' ? soldOutMessages(error, basket) : [];

  return (
    <section aria-labelledby="checkout-heading">
      <h1 id="checkout-heading">Checkout</h1>
      <h2>Your order</h2>
      <ul className="summary" aria-label="Order summary">
        {basket.items.map((line) => (
          <li key={line.productId}>
            <span>
              {line.quantity} × {line.name}
            </span>
            <span>{formatMoney(line.lineTotal, basket.currency)}</span>
          </li>
        ))}
      </ul>
      <p className="total">
        Total <strong>{formatMoney(basket.total, basket.currency)}</strong>
      </p>

      <form
        className="checkout-form"
        noValidate
        onSubmit={(e: FormEvent) => {
          e.preventDefault();
          void place();
        }}
      >
        <label htmlFor="customerRef">Email or customer reference</label>
        <input
          id="customerRef"
          name="customerRef"
          type="text"
          autoComplete="email"
          required
          value={customerRef}
          onChange={(e) => setCustomerRef(e.target.value)}
          onBlur={() => setTouched(true)}
          aria-invalid={fieldProblem ? true : undefined}
          aria-describedby={fieldProblem ? 'customerRef-error' : undefined}
        />
        {fieldProblem && (
          <p id="customerRef-error" className="field-error">
            {fieldProblem}
          </p>
        )}
        <button type="submit" disabled={placing}>
          {placing ? 'Placing order…' : error?.retryable ? 'Try placing the order again' : 'Place order'}
        </button>
      </form>

      {error && error.code === 'sold_out' && (
        <div className="error" role="alert">
          <p>
            <strong>Not enough stock to place your order.</strong>
          </p>
          {soldOut.length > 0 ? (
            <ul>
              {soldOut.map((m) => (
                <li key={m}>{m}</li>
              ))}
            </ul>
          ) : (
            <p>{error.message}</p>
          )}
          <p>
            <Link to="/basket">Change your basket</Link> and try again.
          </p>
        </div>
      )}
      {error && error.code !== 'sold_out' && (
        <ErrorMessage
          title="Your order was not placed."
          error={
            error.retryable
              ? `${error.message} Trying again is safe: you will not be charged twice.`
              : error.message
          }
          onRetry={error.retryable ? () => void place() : undefined}
        />
      )}
    </section>
  );
}
