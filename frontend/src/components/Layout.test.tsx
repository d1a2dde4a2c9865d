import { act, render, screen } from '@testing-library/react';
import { useEffect, useRef } from 'react';
import { MemoryRouter, Route, Routes, useNavigate } from 'react-router';
import { beforeEach, describe, expect, it } from 'vitest';
import { BasketProvider } from '../basket';
import { ShopProvider } from '../shop';
import { FakeApi, FakeWebSocket, makeShop } from '../test/fakes';
import { Layout } from './Layout';

function From() {
  const navigate = useNavigate();
  return (
    <button type="button" onClick={() => navigate('/to')}>
      Go
    </button>
  );
}

/** A page that puts focus in its own field as it opens (as a page may for an error). */
function FocusesItsField() {
  const field = useRef<HTMLInputElement>(null);
  useEffect(() => field.current?.focus(), []);
  return <input aria-label="Your field" ref={field} />;
}

function Plain() {
  return <h1>Plain page</h1>;
}

function renderAt(target: React.ReactNode) {
  return render(
    <ShopProvider shop={makeShop(new FakeApi())}>
      <BasketProvider>
        <MemoryRouter initialEntries={['/from']}>
          <Layout>
            <Routes>
              <Route path="/from" element={<From />} />
              <Route path="/to" element={target} />
            </Routes>
          </Layout>
        </MemoryRouter>
      </BasketProvider>
    </ShopProvider>,
  );
}

describe('layout', () => {
  beforeEach(() => FakeWebSocket.reset());

  it('moves focus to the new page after a navigation', () => {
    renderAt(<Plain />);
    act(() => screen.getByRole('button', { name: 'Go' }).click());
    expect(document.activeElement).toBe(screen.getByRole('main'));
  });

  // Bug (issue #19): the focus reset after navigation took focus away from
  // a field the user had already entered, losing keystrokes.
  it('leaves focus where the new page put it', () => {
    renderAt(<FocusesItsField />);
    act(() => screen.getByRole('button', { name: 'Go' }).click());
    expect(document.activeElement).toBe(screen.getByLabelText('Your field'));
  });

  it('links to "My orders" and shows no developer words', () => {
    renderAt(<Plain />);
    expect(screen.getByRole('link', { name: 'My orders' }).getAttribute('href')).toBe('/orders');
    expect(document.body.textContent).not.toMatch(/stack|Live updates/);
  });
});
