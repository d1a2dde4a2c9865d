import { useEffect, useRef, type ReactNode } from 'react';
import { Link, NavLink, useLocation } from 'react-router';
import { itemCount, useBasket } from '../basket';

export function Layout({ children }: { children: ReactNode }) {
  const { basket } = useBasket();
  const count = itemCount(basket);
  const { pathname } = useLocation();
  const main = useRef<HTMLElement>(null);
  const firstPath = useRef(pathname);

  // A client-side navigation is silent to a screen reader: move focus to the
  // new page's content, as a full page load would put it at the top. Not
  // when the new page has put focus somewhere itself (an error message), or
  // the user has already gone into a field: that would swallow keystrokes.
  useEffect(() => {
    if (pathname === firstPath.current) return;
    firstPath.current = '';
    window.scrollTo?.(0, 0);
    if (!focusIsTaken(main.current)) main.current?.focus({ preventScroll: true });
  }, [pathname]);

  return (
    <>
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <header className="site-header">
        <Link to="/" className="brand">
          WooCom
        </Link>
        <nav aria-label="Main">
          <ul>
            <li>
              <NavLink to="/" end>
                Catalogue
              </NavLink>
            </li>
            <li>
              <NavLink to="/orders" end>
                My orders
              </NavLink>
            </li>
            <li>
              <NavLink to="/basket">
                Basket
                {count > 0 && (
                  <span className="badge" aria-label={`${count} ${count === 1 ? 'item' : 'items'}`}>
                    {count}
                  </span>
                )}
              </NavLink>
            </li>
          </ul>
        </nav>
      </header>
      <main id="main" tabIndex={-1} ref={main}>
        {children}
      </main>
      <footer className="site-footer">
        <p>WooCom</p>
      </footer>
    </>
  );
}

/** Focus the page itself placed inside `main` (a field, an error message). */
function focusIsTaken(main: HTMLElement | null): boolean {
  const active = document.activeElement;
  if (!main || !active || active === document.body || active === main) return false;
  return main.contains(active) && active.matches('input, textarea, select, [role="alert"], [contenteditable="true"]');
}
