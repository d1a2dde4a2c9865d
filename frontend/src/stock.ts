import { useCallback, useEffect, useRef, useState } from 'react';
import type { LiveMessage, LiveState } from './live';
import { useLive, useShop } from './shop';

/**
 * The stock of each of `productIds`, read from the products API and kept
 * live (topic `catalogue`); a product not read yet, or that could not be
 * read, is absent. Read again whenever the socket (re)opens, since pushes
 * only flow while it is open.
 */
export function useStock(productIds: string[]): { stock: Record<string, number>; live: LiveState } {
  const { api } = useShop();
  const [stock, setStock] = useState<Record<string, number>>({});
  const key = [...new Set(productIds)].sort().join('\n');
  const wanted = useRef(new Set<string>());
  wanted.current = new Set(key ? key.split('\n') : []);
  const [generation, setGeneration] = useState(0);

  // A push that arrives while a read is in flight is newer than the read.
  const pushedSince = useRef(new Set<string>());

  useEffect(() => {
    if (!key) return;
    const controller = new AbortController();
    pushedSince.current = new Set();
    for (const id of key.split('\n')) {
      api
        .getProduct(id, controller.signal)
        .then((p) => {
          if (controller.signal.aborted || pushedSince.current.has(p.id)) return;
          setStock((s) => ({ ...s, [p.id]: p.stock }));
        })
        .catch(() => {
          /* unknown stock: the line shows none, checkout still judges */
        });
    }
    return () => controller.abort();
  }, [api, key, generation]);

  const onMessage = useCallback((m: LiveMessage) => {
    if (m.type !== 'stock' || !wanted.current.has(m.productId)) return;
    pushedSince.current.add(m.productId);
    setStock((s) => ({ ...s, [m.productId]: m.stock }));
  }, []);
  const live = useLive(key ? ['catalogue'] : null, onMessage, () => setGeneration((g) => g + 1));
  return { stock, live };
}

/** How many of a product one line may hold: the API's 99, and what is in stock. */
export function lineLimit(stock: number | undefined): number {
  return stock === undefined ? 99 : Math.max(0, Math.min(99, stock));
}
