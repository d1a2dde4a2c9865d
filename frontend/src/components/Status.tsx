import type { ApiError } from '../api';
import type { LiveState } from '../live';

export function Loading({ label }: { label: string }) {
  return (
    <p className="loading" role="status">
      <span className="spinner" aria-hidden="true" />
      {label}
    </p>
  );
}

/** An error the user can act on: what failed, why, and a retry when it may help. */
export function ErrorMessage({
  title,
  error,
  onRetry,
  retryLabel = 'Try again',
}: {
  title: string;
  error: ApiError | Error | string;
  onRetry?: () => void;
  retryLabel?: string;
}) {
  const message = typeof error === 'string' ? error : error.message;
  return (
    <div className="error" role="alert">
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
  connecting: 'Connecting to live updates…',
  open: 'Live updates on',
  reconnecting: 'Live updates interrupted, reconnecting…',
  closed: 'Live updates off',
};

export function LiveIndicator({ state }: { state: LiveState }) {
  return (
    <p className={`live live-${state}`} data-live-state={state}>
      <span className="dot" aria-hidden="true" />
      {LIVE_TEXT[state]}
    </p>
  );
}

export function stockLabel(stock: number): string {
  if (stock <= 0) return 'Sold out';
  if (stock <= 5) return `Only ${stock} left`;
  return `${stock} in stock`;
}
