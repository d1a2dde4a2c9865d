import { useCallback, useEffect, useRef, useState } from 'react';
import { Link, useLocation, useParams } from 'react-router';
import { ApiError, ORDER_STATUSES, type Order, type OrderStatus } from '../api';
import { ErrorMessage, LiveIndicator, Loading, usePageTitle } from '../components/Status';
import type { LiveMessage } from '../live';
import { formatMoney } from '../money';
import { toApiError, useLive, useResource, useShop } from '../shop';

const STATUS_TEXT: Record<OrderStatus, string> = {
  PLACED: 'Placed',
  CONFIRMED: 'Confirmed',
  PAID: 'Paid',
  SHIPPED: 'Shipped',
  DELIVERED: 'Delivered',
  CANCELLED: 'Cancelled',
};

/** What each status means for the customer, in their words. */
const STATUS_HINT: Record<OrderStatus, string> = {
  PLACED: 'We have received your order and are checking it.',
  CONFIRMED: 'Your order is confirmed: we are getting it ready.',
  PAID: 'Your payment has arrived.',
  SHIPPED: 'Your order is on its way.',
  DELIVERED: 'Your order has been delivered.',
  CANCELLED: 'This order was cancelled.',
};

const STEPS: OrderStatus[] = ['PLACED', 'CONFIRMED', 'PAID', 'SHIPPED', 'DELIVERED'];

function known(status: string): status is OrderStatus {
  return (ORDER_STATUSES as readonly string[]).includes(status);
}

export function statusText(status: string): string {
  return known(status) ? STATUS_TEXT[status] : status;
}

/** A sentence about the status, or nothing for a status this page does not know. */
export function statusHint(status: string): string | null {
  return known(status) ? STATUS_HINT[status] : null;
}

function newer(a: string, b: string): boolean {
  const ta = Date.parse(a);
  const tb = Date.parse(b);
  return Number.isNaN(ta) || Number.isNaN(tb) || ta >= tb;
}

/** Statuses from which the customer may still cancel (functions/README.md). */
export const CANCELLABLE: readonly OrderStatus[] = ['PLACED', 'CONFIRMED', 'PAID'];

export function formatTime(iso: string): string {
  const t = Date.parse(iso);
  return Number.isNaN(t) ? iso : new Date(t).toLocaleString();
}

export function OrderPage() {
  const { id = '' } = useParams();
  const { api } = useShop();
  // A status pushed while a read is in flight may be newer than what the read returns.
  type Pushed = { status: OrderStatus; updatedAt: string };
  const pushed = useRef<Pushed | null>(null);
  // Checkout hands over the order it placed: shown at once (as placed),
  // then read again and followed live like any other.
  const handedState = useLocation().state as { order?: Order; placed?: boolean } | null;
  const handed = handedState?.order;
  // Just placed by checkout in this tab: thank the customer.
  const justPlaced = handedState?.placed === true && handed?.id === id;
  const order = useResource(
    `order:${id}`,
    async (signal) => {
      pushed.current = null;
      const o = await api.getOrder(id, signal);
      // (Set by onMessage during the await; TypeScript cannot see that.)
      const p = pushed.current as Pushed | null;
      return p && p.updatedAt && p.updatedAt !== o.updatedAt && newer(p.updatedAt, o.updatedAt) ? { ...o, ...p } : o;
    },
    handed?.id === id ? handed : undefined,
  );
  const { setData, reload } = order;

  const onMessage = useCallback(
    (m: LiveMessage) => {
      if (m.type !== 'order' || m.orderId !== id) return;
      pushed.current = { status: m.status as OrderStatus, updatedAt: m.updatedAt };
      setData((o) =>
        newer(m.updatedAt, o.updatedAt)
          ? { ...o, status: m.status as OrderStatus, updatedAt: m.updatedAt || o.updatedAt }
          : o,
      );
    },
    [id, setData],
  );
  // Pushes flow only once the socket is open: a change between the first GET
  // and then (or while reconnecting) would be missed, so read the order again.
  const notFound = order.error?.code === 'not_found';
  const live = useLive(notFound ? null : [`order:${id}`], onMessage, reload);
  usePageTitle(justPlaced ? 'Thank you for your order' : notFound ? 'Order not found' : 'Your order');

  if (order.status === 'loading' && !order.data) return <Loading label="Loading your order…" />;
  if (!order.data) {
    return (
      <section aria-labelledby="order-heading">
        <h1 id="order-heading">{notFound ? 'Order not found' : 'Order'}</h1>
        {notFound ? (
          <p role="alert">
            We could not find this order. Check the link, or look in <Link to="/orders">My orders</Link>.
          </p>
        ) : (
          <ErrorMessage title="Could not load this order." error={order.error} context="order" onRetry={reload} />
        )}
        <p>
          <Link to="/">Back to the catalogue</Link>
        </p>
      </section>
    );
  }
  return (
    <OrderDetails
      order={order.data}
      live={live}
      justPlaced={justPlaced}
      refreshError={order.status === 'error' ? order.error : null}
      onRetry={reload}
      onChanged={(o) => setData(() => o)}
    />
  );
}

function OrderDetails({
  order,
  live,
  justPlaced,
  refreshError,
  onRetry,
  onChanged,
}: {
  order: Order;
  live: ReturnType<typeof useLive>;
  justPlaced: boolean;
  refreshError: ApiError | null;
  onRetry: () => void;
  onChanged: (order: Order) => void;
}) {
  const reached = STEPS.indexOf(order.status);
  const hint = statusHint(order.status);
  return (
    <article aria-labelledby="order-heading" className="order">
      <h1 id="order-heading">{justPlaced ? 'Thank you for your order' : 'Your order'}</h1>
      {justPlaced && (
        <p className="thanks">
          We have your order. We will send news about it to <strong>{order.customerRef}</strong>, and this page
          follows it as it changes.
        </p>
      )}
      <p className="order-number">
        Order number <span data-testid="order-id">{order.id}</span>
      </p>
      <LiveIndicator state={live} />
      <p className="order-status" role="status" aria-live="polite" aria-atomic="true">
        Status: <strong data-testid="order-status" data-status={order.status}>{statusText(order.status)}</strong>
      </p>
      {refreshError && (
        <ErrorMessage
          title="Could not refresh this order."
          error={refreshError}
          context="order"
          onRetry={onRetry}
          takeFocus={false}
        />
      )}
      {hint && (
        <p className="status-hint" data-testid="status-hint">
          {hint}
        </p>
      )}
      {order.status !== 'CANCELLED' && (
        <ol className="steps" aria-label="Order progress">
          {STEPS.map((s, i) => (
            <li
              key={s}
              className={i <= reached ? 'done' : undefined}
              aria-current={i === reached ? 'step' : undefined}
            >
              {STATUS_TEXT[s]}
            </li>
          ))}
        </ol>
      )}
      <dl className="order-meta">
        <dt>E-mail</dt>
        <dd>{order.customerRef}</dd>
        <dt>Placed</dt>
        <dd>{formatTime(order.createdAt)}</dd>
        <dt>Last update</dt>
        <dd>{formatTime(order.updatedAt)}</dd>
      </dl>
      <h2>Items</h2>
      <ul className="summary" aria-label="Items in this order">
        {order.items.map((line) => (
          <li key={line.productId}>
            <span>
              {line.quantity} × {line.name}
            </span>
            <span>{formatMoney(line.lineTotal, order.currency)}</span>
          </li>
        ))}
      </ul>
      <p className="total">
        Total <strong>{formatMoney(order.total, order.currency)}</strong>
      </p>
      {CANCELLABLE.includes(order.status) && <CancelOrder order={order} onCancelled={onChanged} />}
      <p>
        <Link to="/">Continue shopping</Link> · <Link to="/orders">My orders</Link>
      </p>
    </article>
  );
}

/**
 * "Cancel order", asked twice. The API cancels once however often it is
 * asked: a retried cancel that finds the order cancelled already is told
 * so (409), and the page then shows the order as it is.
 */
function CancelOrder({ order, onCancelled }: { order: Order; onCancelled: (order: Order) => void }) {
  const { api } = useShop();
  const [asking, setAsking] = useState(false);
  const [pending, setPending] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  const confirm = useRef<HTMLButtonElement>(null);
  const start = useRef<HTMLButtonElement>(null);
  const wasAsking = useRef(false);

  useEffect(() => {
    if (asking) confirm.current?.focus();
    else if (wasAsking.current) start.current?.focus();
    wasAsking.current = asking;
  }, [asking]);

  const cancel = async () => {
    if (pending) return;
    setPending(true);
    setError(null);
    try {
      onCancelled(await api.setOrderStatus(order.id, 'CANCELLED'));
    } catch (err) {
      const e = toApiError(err);
      if (e.code === 'invalid_transition') {
        // Cancelled meanwhile (an earlier try whose answer was lost), or moved on.
        try {
          const now = await api.getOrder(order.id);
          onCancelled(now);
          if (now.status === 'CANCELLED') return;
        } catch {
          /* the error below says it */
        }
      }
      setError(e);
    } finally {
      setPending(false);
    }
  };

  return (
    <div className="cancel-order">
      {!asking ? (
        <button type="button" className="secondary" ref={start} onClick={() => setAsking(true)}>
          Cancel order
        </button>
      ) : (
        <div role="group" aria-labelledby="cancel-question">
          <p id="cancel-question">Cancel this order? This cannot be undone.</p>
          <button type="button" className="danger" ref={confirm} aria-disabled={pending} onClick={() => void cancel()}>
            {pending ? 'Cancelling…' : 'Yes, cancel the order'}
          </button>{' '}
          <button type="button" className="secondary" onClick={() => setAsking(false)}>
            Keep the order
          </button>
        </div>
      )}
      {error && (
        <ErrorMessage
          title="Your order was not cancelled."
          error={error}
          context="order"
          onRetry={error.retryable ? () => void cancel() : undefined}
        />
      )}
    </div>
  );
}
