import { useCallback, useEffect, useState, type FormEvent } from 'react';
import { Link } from 'react-router';
import type { ApiError, Order } from '../api';
import { ErrorMessage, Loading, usePageTitle } from '../components/Status';
import { readCustomerRef, writeCustomerRef } from '../customer';
import { formatMoney } from '../money';
import { toApiError, useShop } from '../shop';
import { emailProblem } from './CheckoutPage';
import { formatTime, statusText } from './OrderPage';

const PAGE_SIZE = 20;

interface Listing {
  items: Order[];
  next: string | null;
  status: 'loading' | 'ready' | 'error';
  error: ApiError | null;
}

/** "My orders": the orders placed with the e-mail address this browser keeps, newest first. */
export function OrdersPage() {
  const [customerRef, setCustomerRef] = useState<string | null>(readCustomerRef);
  usePageTitle('My orders');
  return (
    <section aria-labelledby="orders-heading">
      <h1 id="orders-heading">My orders</h1>
      {customerRef ? (
        <>
          <p>
            Orders placed with <strong>{customerRef}</strong>.{' '}
            <button type="button" className="link-button" onClick={() => setCustomerRef(null)}>
              Use another address
            </button>
          </p>
          <OrderList customerRef={customerRef} />
        </>
      ) : (
        <AskAddress
          onAddress={(ref) => {
            writeCustomerRef(ref);
            setCustomerRef(ref);
          }}
        />
      )}
    </section>
  );
}

function AskAddress({ onAddress }: { onAddress: (ref: string) => void }) {
  const [value, setValue] = useState('');
  const [touched, setTouched] = useState(false);
  const problem = touched ? emailProblem(value) : null;
  return (
    <form
      className="checkout-form"
      noValidate
      onSubmit={(e: FormEvent) => {
        e.preventDefault();
        setTouched(true);
        if (!emailProblem(value)) onAddress(value.trim());
      }}
    >
      <label htmlFor="orders-email">E-mail address you ordered with</label>
      <input
        id="orders-email"
        type="email"
        autoComplete="email"
        value={value}
        onChange={(e) => setValue(e.target.value)}
        aria-invalid={problem ? true : undefined}
        aria-describedby={problem ? 'orders-email-error' : undefined}
      />
      {problem && (
        <p id="orders-email-error" className="field-error">
          {problem}
        </p>
      )}
      <button type="submit">Show my orders</button>
    </form>
  );
}

function OrderList({ customerRef }: { customerRef: string }) {
  const { api } = useShop();
  const [listing, setListing] = useState<Listing>({ items: [], next: null, status: 'loading', error: null });
  const [generation, setGeneration] = useState(0);

  useEffect(() => {
    const controller = new AbortController();
    setListing({ items: [], next: null, status: 'loading', error: null });
    api
      .listOrders({ customerRef }, controller.signal)
      .then((page) => {
        if (!controller.signal.aborted) setListing({ items: page.items, next: page.next, status: 'ready', error: null });
      })
      .catch((err: unknown) => {
        if (!controller.signal.aborted) setListing((l) => ({ ...l, status: 'error', error: toApiError(err) }));
      });
    return () => controller.abort();
  }, [api, customerRef, generation]);

  const more = useCallback(async () => {
    if (!listing.next) return;
    try {
      const page = await api.listOrders({ customerRef, next: listing.next, limit: PAGE_SIZE });
      setListing((l) => ({ ...l, items: l.items.concat(page.items), next: page.next }));
    } catch (err) {
      setListing((l) => ({ ...l, status: 'error', error: toApiError(err) }));
    }
  }, [api, customerRef, listing.next]);

  if (listing.status === 'loading' && listing.items.length === 0) return <Loading label="Loading your orders…" />;
  return (
    <>
      {listing.status === 'error' && (
        <ErrorMessage
          title="Could not load your orders."
          error={listing.error}
          context="orders"
          onRetry={() => setGeneration((g) => g + 1)}
        />
      )}
      {listing.status === 'ready' && listing.items.length === 0 && (
        <p>
          No orders yet. <Link to="/">Browse the catalogue</Link>
        </p>
      )}
      {listing.items.length > 0 && (
        <ul className="order-list" aria-label="Your orders">
          {listing.items.map((o) => (
            <li key={o.id}>
              <Link to={`/orders/${encodeURIComponent(o.id)}`}>Order of {formatTime(o.createdAt)}</Link>
              <span className="order-list-status" data-status={o.status}>
                {statusText(o.status)}
              </span>
              <span>
                {o.items.reduce((n, l) => n + l.quantity, 0)} items · {formatMoney(o.total, o.currency)}
              </span>
            </li>
          ))}
        </ul>
      )}
      {listing.next && listing.status === 'ready' && (
        <button type="button" className="secondary" onClick={() => void more()}>
          Show older orders
        </button>
      )}
    </>
  );
}
