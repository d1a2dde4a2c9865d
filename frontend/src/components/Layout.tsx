import { useEffect, useRef, type ReactNode } from 'react';
import { Link, NavLink, useLocation } from 'react-router';
import { itemCount, useBasket } from '../basket';
import { useShop } from '../shop';

export function Layout({ children }: { children: ReactNode }) {
  const { config } = useShop();
  const { basket } = useBasket();
  const count = itemCount(basket);
  const { pathname } = useLocation();
  const main = useRef<HTMLElement>(null);
  const firstPath = useRef(pathname);

  // A client-side navigation is silent to a screen reader: move focus to the
  // new page's content, as a full page load would put it at the top.
  useEffect(() => {
    if (pathname === firstPath.current) return;
    firstPath.current = '';
    window.scrollTo?.(0, 0);
    main.current?.focus({ preventScroll: true });
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
        <p>WooCom{config.stack ? ` · stack ${config.stack}` : ''}</p>
      </footer>
    </>
  );
}
