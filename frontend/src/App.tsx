import { BrowserRouter, Link, Route, Routes } from 'react-router';
import { BasketProvider } from './basket';
import { Layout } from './components/Layout';
import { usePageTitle } from './components/Status';
import { BasketPage } from './pages/BasketPage';
import { CataloguePage } from './pages/CataloguePage';
import { CheckoutPage } from './pages/CheckoutPage';
import { OrderPage } from './pages/OrderPage';
import { OrdersPage } from './pages/OrdersPage';
import { ProductPage } from './pages/ProductPage';
import { ShopProvider, type Shop } from './shop';

export function AppRoutes() {
  return (
    <Layout>
      <Routes>
        <Route path="/" element={<CataloguePage />} />
        <Route path="/products/:id" element={<ProductPage />} />
        <Route path="/basket" element={<BasketPage />} />
        <Route path="/checkout" element={<CheckoutPage />} />
        <Route path="/orders" element={<OrdersPage />} />
        <Route path="/orders/:id" element={<OrderPage />} />
        <Route path="*" element={<NotFound />} />
      </Routes>
    </Layout>
  );
}

function NotFound() {
  usePageTitle('Page not found');
  return (
    <section aria-labelledby="nf-heading">
      <h1 id="nf-heading">Page not found</h1>
      <p>
        <Link to="/">Back to the catalogue</Link>
      </p>
    </section>
  );
}

export function App({ shop }: { shop: Shop }) {
  return (
    <ShopProvider shop={shop}>
      <BasketProvider>
        <BrowserRouter>
          <AppRoutes />
        </BrowserRouter>
      </BasketProvider>
    </ShopProvider>
  );
}
