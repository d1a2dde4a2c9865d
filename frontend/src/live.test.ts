import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { LiveConnection, liveUrl, parseLiveMessage, type LiveMessage, type LiveState } from './live';
import { FakeWebSocket } from './test/fakes';

describe('liveUrl', () => {
  it('puts the topics in the query, keeping the colon of order topics', () => {
    expect(liveUrl('ws://127.0.0.1:4001/local', ['catalogue'])).toBe('ws://127.0.0.1:4001/local?topics=catalogue');
    expect(liveUrl('wss://x.example/prod', ['order:o-1', 'catalogue'])).toBe(
      'wss://x.example/prod?topics=order:o-1,catalogue',
    );
    expect(liveUrl('ws://h/s?token=t&topics=old', ['order:a b'])).toBe('ws://h/s?token=t&topics=order:a%20b');
  });
});

describe('parseLiveMessage', () => {
  it('accepts the pushes of the contract and rejects anything else', () => {
    expect(parseLiveMessage('{"type":"stock","productId":"p1","stock":4}')).toEqual({
      type: 'stock',
      productId: 'p1',
      stock: 4,
    });
    expect(
      parseLiveMessage('{"type":"order","orderId":"o1","status":"PAID","updatedAt":"2026-01-01T00:00:00Z"}'),
    ).toEqual({ type: 'order', orderId: 'o1', status: 'PAID', updatedAt: '2026-01-01T00:00:00Z' });
    expect(parseLiveMessage('{"type":"stock","productId":"p1","stock":"4"}')).toBeNull();
    expect(parseLiveMessage('not json')).toBeNull();
    expect(parseLiveMessage('{"type":"hello"}')).toBeNull();
  });
});

describe('LiveConnection', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    FakeWebSocket.reset();
  });
  afterEach(() => vi.useRealTimers());

  it('delivers pushes and reconnects with growing delays after drops', () => {
    const messages: LiveMessage[] = [];
    const states: LiveState[] = [];
    const opens: boolean[] = [];
    const delays: number[] = [];
    const conn = new LiveConnection(
      'ws://h/local',
      ['catalogue'],
      { onMessage: (m) => messages.push(m), onStateChange: (s) => states.push(s), onOpen: (r) => opens.push(r) },
      {
        WebSocketImpl: FakeWebSocket as unknown as typeof WebSocket,
        backoff: (attempt) => {
          const d = 100 * 2 ** attempt;
          delays.push(d);
          return d;
        },
      },
    );
    const first = FakeWebSocket.latest();
    expect(first.url).toBe('ws://h/local?topics=catalogue');
    first.open();
    first.push({ type: 'stock', productId: 'p1', stock: 2 });
    expect(messages).toEqual([{ type: 'stock', productId: 'p1', stock: 2 }]);

    first.drop();
    expect(states.at(-1)).toBe('reconnecting');
    expect(FakeWebSocket.instances).toHaveLength(1);
    vi.advanceTimersByTime(99);
    expect(FakeWebSocket.instances).toHaveLength(1);
    vi.advanceTimersByTime(1);
    expect(FakeWebSocket.instances).toHaveLength(2);

    // The second attempt fails before opening: the next wait is longer.
    FakeWebSocket.latest().drop();
    vi.advanceTimersByTime(199);
    expect(FakeWebSocket.instances).toHaveLength(2);
    vi.advanceTimersByTime(1);
    expect(FakeWebSocket.instances).toHaveLength(3);
    FakeWebSocket.latest().open();
    expect(opens).toEqual([false, true]);
    expect(states.at(-1)).toBe('open');
    expect(delays).toEqual([100, 200]);

    // Once open again the backoff starts over.
    FakeWebSocket.latest().drop();
    expect(delays.at(-1)).toBe(100);
    conn.close();
  });

  it('stops for good when closed', () => {
    const conn = new LiveConnection(
      'ws://h/local',
      ['order:o1'],
      { onMessage: () => {} },
      { WebSocketImpl: FakeWebSocket as unknown as typeof WebSocket, backoff: () => 10 },
    );
    const ws = FakeWebSocket.latest();
    ws.open();
    conn.close();
    expect(ws.closedByClient).toBe(true);
    ws.drop();
    vi.advanceTimersByTime(1000);
    expect(FakeWebSocket.instances).toHaveLength(1);
  });
});
