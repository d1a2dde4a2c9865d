import { createContext, useCallback, useContext, useEffect, useMemo, useRef, useState, type ReactNode } from 'react';
import { ApiError, type Basket } from './api';
import { toApiError, useShop } from './shop';

export const BASKET_KEY = 'woocom.basketId';

function readBasketId(): string | null {
  try {
    return localStorage.getItem(BASKET_KEY);
  } catch {
    return null;
  }
}

function writeBasketId(id: string | null): void {
  try {
    if (id) localStorage.setItem(BASKET_KEY, id);
    else localStorage.removeItem(BASKET_KEY);
  } catch {
    /* private mode: the basket lives as long as the tab */
  }
}

export interface BasketState {
  /** null while loading the first time, or when there is no basket yet. */
  basket: Basket | null;
  status: 'loading' | 'ready' | 'error';
  error: ApiError | null;
  reload: () => void;
  addItem: (productId: string, quantity: number) => Promise<Basket>;
  setQuantity: (productId: string, quantity: number) => Promise<Basket>;
  removeItem: (productId: string) => Promise<Basket>;
  /** After checkout: the closed basket is no longer the browser's basket. */
  forget: () => void;
  /**
   * The order of a basket this page showed that was checked out elsewhere
   * (another tab or window); null when there is nothing to tell.
   */
  checkedOutElsewhere: string | null;
  dismissCheckedOut: () => void;
}

const BasketContext = createContext<BasketState | null>(null);

/** A basket that is gone or closed: start a new one instead. */
function isStale(err: unknown): boolean {
  return err instanceof ApiError && (err.code === 'not_found' || err.code === 'basket_closed');
}

export function BasketProvider({ children }: { children: ReactNode }) {
  const { api } = useShop();
  const [basket, setBasket] = useState<Basket | null>(null);
  const [status, setStatus] = useState<BasketState['status']>('loading');
  const [error, setError] = useState<ApiError | null>(null);
  const [generation, setGeneration] = useState(0);
  const [checkedOutElsewhere, setCheckedOutElsewhere] = useState<string | null>(null);
  const idRef = useRef<string | null>(readBasketId());

  const adopt = useCallback((b: Basket | null) => {
    idRef.current = b ? b.id : null;
    writeBasketId(idRef.current);
    setBasket(b);
    setStatus('ready');
    setError(null);
  }, []);

  useEffect(() => {
    // The stored id, or (when another tab removed it after its checkout)
    // the basket this tab was showing: read it to learn what became of it.
    const id = readBasketId() ?? idRef.current;
    idRef.current = id;
    if (!id) {
      // No basket until the first thing is added to it.
      setBasket(null);
      setStatus('ready');
      return;
    }
    const controller = new AbortController();
    setStatus('loading');
    api
      .getBasket(id, controller.signal)
      .then((b) => {
        if (controller.signal.aborted) return;
        if (b.status !== 'OPEN') {
          if (b.orderId) setCheckedOutElsewhere(b.orderId);
          // Another tab may have started the next basket meanwhile.
          const next = readBasketId();
          if (next && next !== b.id) {
            idRef.current = next;
            setGeneration((g) => g + 1);
            return;
          }
        }
        adopt(b.status === 'OPEN' ? b : null);
      })
      .catch((err: unknown) => {
        if (controller.signal.aborted) return;
        if (isStale(err)) {
          adopt(null);
        } else {
          setError(toApiError(err));
          setStatus('error');
        }
      });
    return () => controller.abort();
  }, [api, adopt, generation]);

  // Another tab changed the basket (added to it, checked it out): show what
  // is stored now rather than a basket that no longer exists. Storage events
  // reach the other tabs only; a tab coming back into view reads it again too.
  useEffect(() => {
    const onStorage = (e: StorageEvent) => {
      if (e.key === BASKET_KEY || e.key === null) setGeneration((g) => g + 1);
    };
    const onVisible = () => {
      if (document.visibilityState === 'visible' && idRef.current) setGeneration((g) => g + 1);
    };
    window.addEventListener('storage', onStorage);
    document.addEventListener('visibilitychange', onVisible);
    return () => {
      window.removeEventListener('storage', onStorage);
      document.removeEventListener('visibilitychange', onVisible);
    };
  }, []);

  const ensureBasketId = useCallback(async (): Promise<string> => {
    if (idRef.current) return idRef.current;
    const created = await api.createBasket();
    adopt(created);
    return created.id;
  }, [api, adopt]);

  const addItem = useCallback(
    async (productId: string, quantity: number) => {
      let id = await ensureBasketId();
      let updated: Basket;
      try {
        updated = await api.addItem(id, productId, quantity);
      } catch (err) {
        if (!isStale(err)) throw err;
        // The stored basket expired or was checked out in another tab.
        const created = await api.createBasket();
        id = created.id;
        updated = await api.addItem(id, productId, quantity);
      }
      adopt(updated);
      // A new basket is under way: the old one's story is told.
      setCheckedOutElsewhere(null);
      return updated;
    },
    [api, adopt, ensureBasketId],
  );

  const change = useCallback(
    async (run: (id: string) => Promise<Basket>) => {
      const id = idRef.current;
      if (!id) throw new ApiError(404, 'not_found', 'Your basket is empty.');
      try {
        const updated = await run(id);
        adopt(updated);
        return updated;
      } catch (err) {
        if (isStale(err)) setGeneration((g) => g + 1);
        throw err;
      }
    },
    [adopt],
  );

  const setQuantity = useCallback(
    (productId: string, quantity: number) => change((id) => api.setQuantity(id, productId, quantity)),
    [api, change],
  );
  const removeItem = useCallback(
    (productId: string) => change((id) => api.removeItem(id, productId)),
    [api, change],
  );
  const forget = useCallback(() => adopt(null), [adopt]);
  const reload = useCallback(() => setGeneration((g) => g + 1), []);
  const dismissCheckedOut = useCallback(() => setCheckedOutElsewhere(null), []);

  const value = useMemo<BasketState>(
    () => ({
      basket,
      status,
      error,
      reload,
      addItem,
      setQuantity,
      removeItem,
      forget,
      checkedOutElsewhere,
      dismissCheckedOut,
    }),
    [basket, status, error, reload, addItem, setQuantity, removeItem, forget, checkedOutElsewhere, dismissCheckedOut],
  );
  return <BasketContext.Provider value={value}>{children}</BasketContext.Provider>;
}

export function useBasket(): BasketState {
  const state = useContext(BasketContext);
  if (!state) throw new Error('useBasket outside BasketProvider');
  return state;
}

export function itemCount(basket: Basket | null): number {
  return basket ? basket.items.reduce((n, line) => n + line.quantity, 0) : 0;
}
