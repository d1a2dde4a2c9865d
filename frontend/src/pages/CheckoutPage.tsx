import { useEffect, useRef, useState, type FormEvent } from 'react';
import { Link, useNavigate } from 'react-router';
import type { ApiError, Basket, Order } from '../api';
import { useBasket } from '../basket';
import { ErrorMessage, Loading, usePageTitle } from '../components/Status';
import { readCustomerRef, writeCustomerRef } from '../customer';
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

/** Waits before each automatic check after a lost answer (ms). */
export const CHECK_DELAYS = [300, 1000, 2500];

const DRAFT_KEY = 'woocom.checkoutEmail';

function readDraft(): string {
  try {
    return sessionStorage.getItem(DRAFT_KEY) ?? readCustomerRef() ?? '';
  } catch {
    return readCustomerRef() ?? '';
  }
}

function writeDraft(value: string): void {
  try {
    sessionStorage.setItem(DRAFT_KEY, value);
  } catch {
    /* kept for this page only */
  }
}

const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

export function emailProblem(value: string): string | null {
  const email = value.trim();
  if (email === '') return 'Enter your e-mail address.';
  if (email.length > 200) return 'Use at most 200 characters.';
  if (!EMAIL.test(email)) return 'Enter an e-mail address like name@example.com.';
  return null;
}

/**
 * Where a checkout stands. `checking`: the answer to "Place order" was lost,
 * so the order may exist; the page asks again with the same key (which never
 * places it twice). `unsure`: still no answer after those checks.
 */
type Phase = 'idle' | 'placing' | 'checking' | 'unsure';

export function CheckoutPage() {
  const { api } = useShop();
  const { basket, status, error: basketError, reload, forget } = useBasket();
  const navigate = useNavigate();
  const [email, setEmail] = useState(readDraft);
  const [touched, setTouched] = useState(false);
  const [phase, setPhase] = useState<Phase>('idle');
  const [error, setError] = useState<ApiError | null>(null);
  const keyRef = useRef<string | null>(null);
  const field = useRef<HTMLInputElement>(null);
  const soldOutBox = useRef<HTMLDivElement>(null);
  const mounted = useRef(true);
  usePageTitle('Checkout');

  useEffect(() => {
    mounted.current = true;
    return () => {
      mounted.current = false;
    };
  }, []);

  useEffect(() => {
    if (error?.code === 'sold_out') soldOutBox.current?.focus();
  }, [error]);

  if (status === 'loading' && !basket) return <Loading label="Loading your basket…" />;
  if (status === 'error' && basketError && !basket) {
    return (
      <section aria-labelledby="checkout-heading">
        <h1 id="checkout-heading">Checkout</h1>
        <ErrorMessage title="Could not load your basket." error={basketError} context="checkout" onRetry={reload} />
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

  const ref = email.trim();
  const localProblem = emailProblem(email);
  const serverFieldProblem =
    error?.code === 'validation_failed' && error.fields.customerRef !== undefined
      ? 'Enter your e-mail address (at most 200 characters).'
      : null;
  const fieldProblem = (touched ? localProblem : null) ?? serverFieldProblem;

  const opened = (order: Order) => {
    dropKey(basket.id);
    writeCustomerRef(order.customerRef);
    forget();
    // The order page shows the placed order at once, then follows it.
    navigate(`/orders/${encodeURIComponent(order.id)}`, { state: { order, placed: true } });
  };

  /** Sends the checkout with this attempt's key; after a lost answer, asks again with it. */
  const send = async (checks: number): Promise<void> => {
    const clientKey = (keyRef.current ??= attemptKey(basket.id));
    try {
      opened(await api.placeOrder({ basketId: basket.id, customerRef: ref, clientKey }));
    } catch (err) {
      const e = toApiError(err);
      if (e.code === 'basket_closed') {
        // Checked out already (another tab, or an answer that got lost): find that order.
        try {
          const order = (await api.listOrders({ basketId: basket.id })).items[0];
          if (order) return opened(order);
        } catch {
          /* fall through to the error */
        }
      }
      if (!mounted.current) return;
      if (e.retryable) {
        // The order may have been placed: say so, and check with the same key.
        const delay = CHECK_DELAYS[checks];
        if (delay === undefined) {
          setError(e);
          setPhase('unsure');
          return;
        }
        setError(null);
        setPhase('checking');
        await new Promise((resolve) => setTimeout(resolve, delay));
        if (mounted.current) return send(checks + 1);
        return;
      }
      // A definite "no" ends this attempt; the next one gets a new key.
      dropKey(basket.id);
      keyRef.current = null;
      setError(e);
      setPhase('idle');
    }
  };

  const place = async () => {
    setTouched(true);
    if (localProblem) {
      field.current?.focus();
      return;
    }
    if (phase === 'placing' || phase === 'checking') return;
    setPhase('placing');
    setError(null);
    await send(0);
  };

  const checkAgain = async () => {
    setPhase('checking');
    setError(null);
    await send(CHECK_DELAYS.length - 1);
  };

  const soldOut = error?.code === 'sold_out' ? soldOutMessages(error, basket) : [];
  const waiting = phase === 'placing' || phase === 'checking';

  return (
    <section aria-labelledby="checkout-heading">
      <h1 id="checkout-heading">Checkout</h1>
      <h2>Your order</h2>
      <ul className="summary" aria-label="Order summary">
        {basket.items.map((line) => (
          <li key={line.productId}>
            <span className="line-name">
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
        <label htmlFor="customerRef">E-mail address</label>
        <p id="customerRef-help" className="field-help">
          We use it to find your orders under “My orders”.
        </p>
        <input
          id="customerRef"
          name="email"
          type="email"
          autoComplete="email"
          inputMode="email"
          required
          ref={field}
          value={email}
          readOnly={phase === 'checking' || phase === 'unsure'}
          onChange={(e) => {
            setEmail(e.target.value);
            writeDraft(e.target.value);
          }}
          onBlur={() => setTouched(true)}
          aria-invalid={fieldProblem ? true : undefined}
          aria-describedby={fieldProblem ? 'customerRef-help customerRef-error' : 'customerRef-help'}
        />
        {fieldProblem && (
          <p id="customerRef-error" className="field-error">
            {fieldProblem}
          </p>
        )}
        {phase !== 'checking' && phase !== 'unsure' && (
          <button type="submit" aria-disabled={waiting}>
            {phase === 'placing' ? 'Placing order…' : 'Place order'}
          </button>
        )}
      </form>

      {phase === 'checking' && (
        <p className="notice" role="status" data-testid="checking-order">
          <span className="spinner" aria-hidden="true" /> We did not get an answer in time, so we are checking your
          order. Please wait: it will not be placed twice.
        </p>
      )}
      {phase === 'unsure' && (
        <ErrorMessage
          title="We could not confirm your order yet."
          error="It may have been placed. Checking again is safe: it will never be placed or charged twice."
          context="checkout"
          onRetry={() => void checkAgain()}
          retryLabel="Check again"
        />
      )}
      {error && error.code === 'sold_out' && (
        <div className="error" role="alert" tabIndex={-1} ref={soldOutBox}>
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
            <p>Some products in your basket do not have enough stock.</p>
          )}
          <p>
            <Link to="/basket">Change your basket</Link> and try again.
          </p>
        </div>
      )}
      {error && phase === 'idle' && error.code !== 'sold_out' && !serverFieldProblem && (
        <ErrorMessage title="Your order was not placed." error={error} context="checkout" />
      )}
    </section>
  );
}
