import { createContext, useCallback, useContext, useEffect, useRef, useState, type ReactNode } from 'react';
import { ApiClient, ApiError } from './api';
import type { ShopConfig } from './config';
import { LiveConnection, type LiveMessage, type LiveState } from './live';

export interface Shop {
  config: ShopConfig;
  api: ApiClient;
  WebSocketImpl?: typeof WebSocket;
  /** Delay before reconnect attempt n; tests make it short. */
  backoff?: (attempt: number) => number;
}

const ShopContext = createContext<Shop | null>(null);

export function ShopProvider({ shop, children }: { shop: Shop; children: ReactNode }) {
  return <ShopContext.Provider value={shop}>{children}</ShopContext.Provider>;
}

export function useShop(): Shop {
  const shop = useContext(ShopContext);
  if (!shop) throw new Error('useShop outside ShopProvider');
  return shop;
}

/**
 * Subscribes to live topics while the component is mounted. `onMessage` and
 * `onOpen` may change every render; the connection is only remade when the
 * topics change. `null` topics: no connection.
 */
export function useLive(
  topics: string[] | null,
  onMessage: (message: LiveMessage) => void,
  onOpen?: (reconnected: boolean) => void,
): LiveState {
  const { config, WebSocketImpl, backoff } = useShop();
  const [state, setState] = useState<LiveState>('connecting');
  const handlers = useRef({ onMessage, onOpen });
  handlers.current = { onMessage, onOpen };
  const key = topics ? topics.join(',') : '';

  useEffect(() => {
    if (!key) {
      setState('closed');
      return;
    }
    const connection = new LiveConnection(
      config.websocketUrl,
      key.split(','),
      {
        onMessage: (m) => handlers.current.onMessage(m),
        onOpen: (reconnected) => handlers.current.onOpen?.(reconnected),
        onStateChange: setState,
      },
      { WebSocketImpl, backoff },
    );
    return () => connection.close();
  }, [key, config.websocketUrl, WebSocketImpl, backoff]);

  return state;
}

export type Resource<T> =
  | { status: 'loading'; data: T | undefined; error: null }
  | { status: 'ready'; data: T; error: null }
  | { status: 'error'; data: T | undefined; error: ApiError };

export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  return new ApiError(0, 'network', err instanceof Error ? err.message : String(err));
}

/**
 * Loads `load()` when `key` changes, with a `reload` for retry buttons and a
 * `setData` for applying live pushes and mutation results.
 */
export function useResource<T>(key: string, load: (signal: AbortSignal) => Promise<T>, initial?: T) {
  // `initial` (e.g. what the previous page already has) shows at once while the first read runs.
  const [resource, setResource] = useState<Resource<T>>({ status: 'loading', data: initial, error: null });
  const [generation, setGeneration] = useState(0);
  const loader = useRef(load);
  loader.current = load;
  const loadedKey = useRef(key);

  useEffect(() => {
    const controller = new AbortController();
    // A reload keeps showing what it has; another key starts blank.
    const keep = loadedKey.current === key;
    loadedKey.current = key;
    setResource((r) => ({ status: 'loading', data: keep ? r.data : undefined, error: null }));
    loader
      .current(controller.signal)
      .then((data) => {
        if (!controller.signal.aborted) setResource({ status: 'ready', data, error: null });
      })
      .catch((err: unknown) => {
        if (controller.signal.aborted) return;
        setResource((r) => ({ status: 'error', data: r.data, error: toApiError(err) }));
      });
    return () => controller.abort();
  }, [key, generation]);

  const reload = useCallback(() => setGeneration((g) => g + 1), []);
  const setData = useCallback((update: (data: T) => T) => {
    setResource((r) => (r.data === undefined ? r : ({ ...r, data: update(r.data) } as Resource<T>)));
  }, []);
  return { ...resource, reload, setData };
}
