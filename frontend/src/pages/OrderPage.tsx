import { useCallback, useRef } from 'react';
import { Link, useLocation, useParams } from 'react-router';
import { ORDER_STATUSES, type Order, type OrderStatus } from '../api';
import { ErrorMessage, LiveIndicator, Loading } from '../components/Status';
import type { LiveMessage } from '../live';
import { formatMoney } from '../money';
import { useLive, useResource, useShop } from '../shop';

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

function formatTime(iso: string): string {
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
  const handed = (useLocation().state as { order?: Order } | null)?.order;
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

  if (order.status === 'loading' && !order.data) return <Loading label="Loading your order…" />;
  if (!order.data) {
    return (
      <section aria-labelledby="order-heading">
        <h1 id="order-heading">{notFound ? 'Order not found' : 'Order'}</h1>
        {notFound ? (
          <p role="alert">There is no order with id “{id}”.</p>
        ) : (
          <ErrorMessage title="Could not load this order." error={order.error ?? 'Unknown error.'} onRetry={reload} />
        )}
        <p>
          <Link to="/">Back to the catalogue</Link>
        </p>
      </section>
    );
  }
  return <OrderDetails order={order.data} live={live} refreshError={order.status === 'error' ? order.error : null} onRetry={reload} />;
}

function OrderDetails({
  order,
  live,
  refreshError,
  onRetry,
}: {
  order: Order;
  live: ReturnType<typeof useLive>;
  refreshError: Error | null;
  onRetry: () => void;
}) {
  const reached = STEPS.indexOf(order.status);
  const hint = statusHint(order.status);
  return (
    <article aria-labelledby="order-heading" className="order">
      <h1 id="order-heading">Order {order.id}</h1>
      <LiveIndicator state={live} />
      <p className="order-status" role="status" aria-live="polite" aria-atomic="true">
        Status: <strong data-testid="order-status" data-status={order.status}>{statusText(order.status)}</strong>
      </p>
      {refreshError && <ErrorMessage title="Could not refresh this order." error={refreshError} onRetry={onRetry} />}
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
        <dt>Customer</dt>
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
      <p>
        <Link to="/">Continue shopping</Link>
      </p>
    </article>
  );
}
