import { useEffect, useRef } from 'react';
import type { LiveState } from '../live';
import { customerMessage, type Context } from '../messages';

export function Loading({ label }: { label: string }) {
  return (
    <p className="loading" role="status">
      <span className="spinner" aria-hidden="true" />
      {label}
    </p>
  );
}

/**
 * An error the user can act on: what failed, why (in the customer's words,
 * never the server's message), and a retry when it may help. It takes focus
 * when it appears, so keyboard and screen reader users land on it; a
 * background refresh that fails passes `takeFocus={false}`.
 */
export function ErrorMessage({
  title,
  error,
  context,
  onRetry,
  retryLabel = 'Try again',
  takeFocus = true,
}: {
  title: string;
  /** An API error (turned into a sentence) or a sentence of the page's own. */
  error: unknown;
  context: Context;
  onRetry?: () => void;
  retryLabel?: string;
  takeFocus?: boolean;
}) {
  const box = useRef<HTMLDivElement>(null);
  const message = typeof error === 'string' ? error : customerMessage(error, context);
  useEffect(() => {
    if (takeFocus) box.current?.focus();
  }, [takeFocus]);
  return (
    <div className="error" role="alert" tabIndex={-1} ref={box}>
      <p>
        <strong>{title}</strong> {message}
      </p>
      {onRetry && (
        <button type="button" onClick={onRetry}>
          {retryLabel}
        </button>
      )}
    </div>
  );
}

const LIVE_TEXT: Record<LiveState, string> = {
  connecting: 'Connecting…',
  open: 'Updates automatically',
  reconnecting: 'Connection lost, reconnecting…',
  closed: 'Not updating automatically',
};

export function LiveIndicator({ state }: { state: LiveState }) {
  return (
    <p className={`live live-${state}`} data-live-state={state}>
      <span className="dot" aria-hidden="true" />
      {LIVE_TEXT[state]}
    </p>
  );
}

/** At or below this many, stock is shown as running low. */
export const LOW_STOCK = 5;

export function stockLabel(stock: number): string {
  if (stock <= 0) return 'Sold out';
  if (stock <= LOW_STOCK) return `Only ${stock} left`;
  return `${stock} in stock`;
}

/** `stock` plus `sold-out` or `low-stock`, so running low does not look like plenty. */
export function stockClass(stock: number): string {
  if (stock <= 0) return 'stock sold-out';
  if (stock <= LOW_STOCK) return 'stock low-stock';
  return 'stock';
}

/** Each page has its own title: what it shows, then the shop's name. */
export function usePageTitle(title: string): void {
  useEffect(() => {
    document.title = title ? `${title} · WooCom` : 'WooCom';
  }, [title]);
}
