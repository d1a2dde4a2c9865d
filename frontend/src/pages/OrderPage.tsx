import { useCallback, useRef } from 'react';
import { Link, useParams } from 'react-router';
import { ORDER_STATUSES, type Order, type OrderStatus } from '../api';
import { ErrorMessage, LiveIndicator, Loading } from '../components/Status';
import type { LiveMessage } from '../live';
import { formatMoney } from '../money';
import { useLive, useResource, useShop } from '../shop';

const STATUS_TEXT: Record<OrderStatus, string> = {
  PLACED: 'Placed',
  PAID: 'Paid',
  SHIPPED: 'Shipped',
  DELIVERED: 'Delivered',
  CANCELLED: 'Cancelled',
};

const STEPS: OrderStatus[] = ['PLACED', 'PAID', 'SHIPPED', 'DELIVERED'];

export function statusText(status: string): string {
  return (ORDER_STATUSES as readonly string[]).includes(status) ? STATUS_TEXT[status as OrderStatus] : status;
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
  const order = useResource(`order:${id}`, async (signal) => {
    pushed.current = null;
    const o = await api.getOrder(id, signal);
    // (Set by onMessage during the await; TypeScript cannot see that.)
    const p = pushed.current as Pushed | null;
    return p && p.updatedAt && p.updatedAt !== o.updatedAt && newer(p.updatedAt, o.updatedAt) ? { ...o, ...p } : o;
  });
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
  return (
    <article aria-labelledby="order-heading" className="order">
      <h1 id="order-heading">Order {order.id}</h1>
      <LiveIndicator state={live} />
      <p className="order-status" role="status" aria-live="polite" aria-atomic="true">
        Status: <strong data-testid="order-status" data-status={order.status}>{statusText(order.status)}</strong>
      </p>
      {refreshError && <ErrorMessage title="Could not refresh this order." error={refreshError} onRetry={onRetry} />}
      {order.status === 'CANCELLED' ? (
        <p>This order was cancelled.</p>
      ) : (
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
