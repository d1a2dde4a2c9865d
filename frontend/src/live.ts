// One WebSocket client for the live-update API: subscribe to topics, get
// `stock` and `order` pushes, reconnect with backoff when the socket drops.

export interface StockPush {
  type: 'stock';
  productId: string;
  stock: number;
}

export interface OrderPush {
  type: 'order';
  orderId: string;
  status: string;
  updatedAt: string;
}

export interface SubscribedReply {
  type: 'subscribed';
  topics: string[];
}

export type LiveMessage = StockPush | OrderPush | SubscribedReply;

export type LiveState = 'connecting' | 'open' | 'reconnecting' | 'closed';

export interface LiveHandlers {
  onMessage: (message: LiveMessage) => void;
  onStateChange?: (state: LiveState) => void;
  /**
   * Called each time the socket opens; `reconnected` after a drop, when
   * pushes may have been missed. Pushes start only once the socket is open,
   * so state read before then may be stale too.
   */
  onOpen?: (reconnected: boolean) => void;
}

export interface LiveOptions {
  WebSocketImpl?: typeof WebSocket;
  /** Delay before reconnect attempt `attempt` (0-based), in ms. */
  backoff?: (attempt: number) => number;
}

export const defaultBackoff = (attempt: number): number => {
  const base = Math.min(500 * 2 ** attempt, 15_000);
  return base / 2 + Math.random() * (base / 2);
};

/** `ws://host/stage?topics=a,b` — topic names keep their `:` so they read as sent. */
export function liveUrl(websocketUrl: string, topics: string[]): string {
  const [base = '', existing] = websocketUrl.split('?', 2);
  const params = (existing ? existing.split('&') : []).filter((p) => p && !p.startsWith('topics='));
  const encoded = topics.map((t) => encodeURIComponent(t).replace(/%3A/gi, ':')).join(',');
  params.push(`topics=${encoded}`);
  return `${base}?${params.join('&')}`;
}

export function parseLiveMessage(data: unknown): LiveMessage | null {
  if (typeof data !== 'string') return null;
  let json: unknown;
  try {
    json = JSON.parse(data);
  } catch {
    return null;
  }
  if (typeof json !== 'object' || json === null) return null;
  const m = json as Record<string, unknown>;
  if (m.type === 'stock' && typeof m.productId === 'string' && typeof m.stock === 'number') {
    return { type: 'stock', productId: m.productId, stock: m.stock };
  }
  if (m.type === 'order' && typeof m.orderId === 'string' && typeof m.status === 'string') {
    return {
      type: 'order',
      orderId: m.orderId,
      status: m.status,
      updatedAt: typeof m.updatedAt === 'string' ? m.updatedAt : '',
    };
  }
  if (m.type === 'subscribed' && Array.isArray(m.topics)) {
    return { type: 'subscribed', topics: m.topics.filter((t): t is string => typeof t === 'string') };
  }
  return null;
}

export class LiveConnection {
  private socket: WebSocket | null = null;
  private attempt = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private closed = false;
  private everOpened = false;
  private readonly WS: typeof WebSocket;
  private readonly backoff: (attempt: number) => number;

  constructor(
    private readonly websocketUrl: string,
    private readonly topics: string[],
    private readonly handlers: LiveHandlers,
    options: LiveOptions = {},
  ) {
    this.WS = options.WebSocketImpl ?? globalThis.WebSocket;
    this.backoff = options.backoff ?? defaultBackoff;
    this.connect();
  }

  private setState(state: LiveState): void {
    this.handlers.onStateChange?.(state);
  }

  private connect(): void {
    if (this.closed) return;
    this.setState(this.everOpened || this.attempt > 0 ? 'reconnecting' : 'connecting');
    let socket: WebSocket;
    try {
      socket = new this.WS(liveUrl(this.websocketUrl, this.topics));
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.socket = socket;
    socket.onopen = () => {
      if (this.closed) return;
      const reconnected = this.everOpened;
      this.everOpened = true;
      this.attempt = 0;
      this.setState('open');
      this.handlers.onOpen?.(reconnected);
    };
    socket.onmessage = (event: MessageEvent) => {
      const message = parseLiveMessage(event.data);
      if (message) this.handlers.onMessage(message);
    };
    socket.onclose = () => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.scheduleReconnect();
    };
    // An error is always followed by close, which does the reconnecting.
    socket.onerror = () => {};
  }

  private scheduleReconnect(): void {
    if (this.closed) return;
    this.setState('reconnecting');
    const delay = this.backoff(this.attempt);
    this.attempt += 1;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.connect();
    }, delay);
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const socket = this.socket;
    this.socket = null;
    if (socket) {
      socket.onopen = null;
      socket.onmessage = null;
      socket.onclose = null;
      socket.onerror = null;
      try {
        socket.close(1000);
      } catch {
        /* already closing */
      }
    }
    this.setState('closed');
  }
}
