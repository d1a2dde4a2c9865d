import { act, render, screen } from '@testing-library/react';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { Boot } from './Boot';
import { API, FakeApi, FakeWebSocket, WS, product } from './test/fakes';

describe('boot', () => {
  beforeEach(() => FakeWebSocket.reset());

  it('explains a missing /config.json, and starts the shop once it can be loaded', async () => {
    let stackUp = false;
    const api = new FakeApi().on('GET /products', {
      status: 200,
      body: { items: [product('p1', 'Blue mug', 1250, 4)], next: null },
    });
    const fetch = vi.fn((input: string, init?: RequestInit) => {
      if (input === '/config.json') {
        return Promise.resolve(
          stackUp
            ? new Response(JSON.stringify({ apiUrl: API, websocketUrl: WS, stack: 'dev' }), { status: 200 })
            : new Response('{"error":{"code":"stack_not_running","message":"no ready file at .woocom/ready.json"}}', {
                status: 503,
              }),
        );
      }
      return api.fetch(input, init);
    });
    vi.stubGlobal('fetch', fetch);
    vi.stubGlobal('WebSocket', FakeWebSocket);
    window.history.replaceState(null, '', '/');

    const consoleError = vi.spyOn(console, 'error').mockImplementation(() => {});
    render(<Boot />);
    const alert = await screen.findByRole('alert');
    // Bug (issue #19): customers were shown developer instructions.
    expect(alert.textContent).toContain('The shop is not available right now. Please try again in a moment.');
    expect(alert.textContent).not.toMatch(/config\.json|woocom-dev|ready/);
    // Developers find the reason in the console.
    expect(String(consoleError.mock.calls[0]?.[1])).toContain('no ready file at .woocom/ready.json');

    stackUp = true;
    act(() => screen.getByRole('button', { name: 'Try again' }).click());
    expect(await screen.findByRole('heading', { name: 'Blue mug' })).toBeTruthy();
    expect(FakeWebSocket.latest().url).toBe(`${WS}?topics=catalogue`);
    // Bug (issue #19): "stack dev" is a developer's word.
    expect(document.body.textContent).not.toContain('stack');
    vi.unstubAllGlobals();
  });
});
