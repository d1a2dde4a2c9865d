import { expect, test } from '@playwright/test';
import { call, card, frontend, liveOn, orderStatuses, putProduct, recordOrderStatuses, runId } from './stack';

const mug = { id: `e2e-mug-${runId}`, name: `Enamel mug ${runId}`, price: 1250, stock: 10, description: 'Blue enamel, 350 ml' };
const pot = { id: `e2e-pot-${runId}`, name: `Teapot ${runId}`, price: 3400, stock: 2, description: 'Cast iron, 1 l' };
const bowl = { id: `e2e-bowl-${runId}`, name: `Rice bowl ${runId}`, price: 900, stock: 5, description: 'Stoneware, 12 cm' };

test.beforeAll(async () => {
  await putProduct(mug.id, mug);
  await putProduct(pot.id, pot);
  await putProduct(bowl.id, bowl);
});

test('browse, add to basket, change quantity, check out, and follow the order and stock live', async ({
  page,
  browser,
}) => {
  // A second shopper watches the catalogue in their own browser context.
  const watcherContext = await browser.newContext();
  const watcher = await watcherContext.newPage();
  await watcher.goto(`${frontend()}/`);
  await expect(card(watcher, mug.name).getByTestId('stock')).toHaveText(/10 in stock/);
  await liveOn(watcher);

  // Browse the catalogue and open the product.
  await page.goto(`${frontend()}/`);
  await expect(page.getByRole('heading', { level: 1, name: 'Catalogue' })).toBeVisible();
  const mugCard = card(page, mug.name);
  await expect(mugCard.getByText('€12.50')).toBeVisible();
  await mugCard.getByRole('link', { name: mug.name }).click();
  await expect(page).toHaveURL(new RegExp(`/products/${mug.id}$`));
  await expect(page.getByRole('heading', { level: 1, name: mug.name })).toBeVisible();
  await expect(page.getByText(mug.description)).toBeVisible();

  // Add one to the basket, then make it two in the basket.
  await page.getByLabel('Quantity', { exact: true }).fill('1');
  await page.getByRole('button', { name: 'Add to basket' }).click();
  await expect(page.getByText(`Added 1 × ${mug.name} to your basket.`)).toBeVisible();
  await page.getByRole('link', { name: 'View basket' }).click();
  await expect(page.getByRole('heading', { level: 1, name: 'Basket' })).toBeVisible();
  await expect(page.getByTestId('basket-total')).toHaveText('€12.50');
  await page.getByRole('button', { name: `Increase quantity of ${mug.name}` }).click();
  await expect(page.getByLabel(`Quantity of ${mug.name}`, { exact: true })).toHaveValue('2');
  await expect(page.getByTestId('basket-total')).toHaveText('€25.00');

  // Check out.
  await page.getByRole('link', { name: 'Check out' }).click();
  await page.getByLabel('Email or customer reference').fill(`ann-${runId}@example.com`);
  await page.getByRole('button', { name: 'Place order' }).click();
  await expect(page).toHaveURL(/\/orders\/[^/]+$/);
  const orderId = decodeURIComponent(new URL(page.url()).pathname.split('/').pop() ?? '');
  await expect(page.getByRole('heading', { level: 1, name: `Order ${orderId}` })).toBeVisible();
  await expect(page.getByText(`2 × ${mug.name}`)).toBeVisible();
  await liveOn(page);
  // Fulfilment takes it on (the next test follows that closely); only a confirmed order is paid.
  await expect(page.getByTestId('order-status')).toHaveAttribute('data-status', 'CONFIRMED');

  // The checkout took two from stock: the watcher sees it without reloading.
  await expect(card(watcher, mug.name).getByTestId('stock')).toHaveText(/8 in stock/);

  // The back office marks the order paid; the order page shows it without a reload.
  await page.evaluate(() => ((window as unknown as { notReloaded: boolean }).notReloaded = true));
  const paid = await call<{ status: string }>('POST', `/orders/${orderId}/status`, { status: 'PAID' });
  expect(paid.status).toBe(200);
  expect(paid.json.status).toBe('PAID');
  await expect(page.getByTestId('order-status')).toHaveAttribute('data-status', 'PAID');
  await expect(page.getByTestId('order-status')).toHaveText('Paid');
  expect(await page.evaluate(() => (window as unknown as { notReloaded?: boolean }).notReloaded)).toBe(true);

  // A restock PUT is pushed to the watcher too.
  await putProduct(mug.id, { ...mug, stock: 3 });
  await expect(card(watcher, mug.name).getByTestId('stock')).toHaveText(/Only 3 left/);

  // The order page is a real URL: loading it directly works (SPA fallback + config.json).
  await page.reload();
  await expect(page.getByTestId('order-status')).toHaveAttribute('data-status', 'PAID');
  await expect(page.getByRole('link', { name: /^Basket/ })).toBeVisible();

  await watcherContext.close();
});

test('a placed order shows as placed, then as confirmed once fulfilment takes it on, without a reload', async ({ page }) => {
  await recordOrderStatuses(page);
  await page.goto(`${frontend()}/products/${bowl.id}`);
  await page.getByLabel('Quantity', { exact: true }).fill('2');
  await page.getByRole('button', { name: 'Add to basket' }).click();
  await expect(page.getByText(`Added 2 × ${bowl.name} to your basket.`)).toBeVisible();
  await page.getByRole('link', { name: 'View basket' }).click();
  await page.getByRole('link', { name: 'Check out' }).click();
  await page.getByLabel('Email or customer reference').fill(`cy-${runId}@example.com`);
  await page.getByRole('button', { name: 'Place order' }).click();
  await expect(page).toHaveURL(/\/orders\/[^/]+$/);
  const orderId = decodeURIComponent(new URL(page.url()).pathname.split('/').pop() ?? '');

  // The orders function put OrderPlaced on the shop bus; its rule sends it to
  // the fulfilment queue, whose consumer confirms the order; the change is pushed.
  const status = page.getByTestId('order-status');
  await expect(status).toHaveAttribute('data-status', 'CONFIRMED');
  await expect(status).toHaveText('Confirmed');
  await expect(page.getByTestId('status-hint')).toHaveText('Your order is confirmed: we are getting it ready.');
  const progress = page.getByRole('list', { name: 'Order progress' });
  await expect(progress.getByRole('listitem').filter({ hasText: 'Confirmed' })).toHaveAttribute('aria-current', 'step');
  await expect(progress.getByRole('listitem').filter({ hasText: 'Placed' })).toHaveClass('done');

  // The page showed it placed first, then confirmed, in the one page load.
  expect(await orderStatuses(page)).toEqual({ statuses: ['PLACED', 'CONFIRMED'], loads: 1 });
  const stored = await call<{ status: string }>('GET', `/orders/${orderId}`);
  expect(stored.json.status).toBe('CONFIRMED');
});

test('checkout names the product that sold out meanwhile', async ({ page }) => {
  await page.goto(`${frontend()}/products/${pot.id}`);
  await expect(page.getByRole('heading', { level: 1, name: pot.name })).toBeVisible();
  await page.getByLabel('Quantity', { exact: true }).fill('2');
  await page.getByRole('button', { name: 'Add to basket' }).click();
  await expect(page.getByText(`Added 2 × ${pot.name} to your basket.`)).toBeVisible();

  // Someone else buys one before this shopper checks out.
  await putProduct(pot.id, { ...pot, stock: 1 });

  await page.getByRole('link', { name: 'View basket' }).click();
  await page.getByRole('link', { name: 'Check out' }).click();
  await page.getByLabel('Email or customer reference').fill(`bob-${runId}@example.com`);
  await page.getByRole('button', { name: 'Place order' }).click();
  const alert = page.getByRole('alert');
  await expect(alert).toContainText('Not enough stock to place your order.');
  await expect(alert).toContainText(`Only 1 of ${pot.name} is left (you asked for 2).`);
  await expect(page).toHaveURL(/\/checkout$/);

  // Take one, and the order goes through.
  await alert.getByRole('link', { name: 'Change your basket' }).click();
  await page.getByRole('button', { name: `Decrease quantity of ${pot.name}` }).click();
  await expect(page.getByLabel(`Quantity of ${pot.name}`, { exact: true })).toHaveValue('1');
  await page.getByRole('link', { name: 'Check out' }).click();
  await page.getByLabel('Email or customer reference').fill(`bob-${runId}@example.com`);
  await page.getByRole('button', { name: 'Place order' }).click();
  await expect(page).toHaveURL(/\/orders\/[^/]+$/);
  await expect(page.getByTestId('order-status')).toHaveAttribute('data-status', 'CONFIRMED');
});

test('the shop works on a phone-sized screen', async ({ browser }) => {
  const context = await browser.newContext({ viewport: { width: 375, height: 740 }, hasTouch: true, isMobile: true });
  const page = await context.newPage();
  await page.goto(`${frontend()}/`);
  await expect(card(page, mug.name)).toBeVisible();
  // Nothing wider than the screen: no sideways scrolling.
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  expect(overflow).toBeLessThanOrEqual(0);
  await card(page, mug.name).getByRole('link', { name: mug.name }).tap();
  await expect(page.getByRole('button', { name: 'Add to basket' })).toBeInViewport();

  // An order page, with its long id in the heading, fits too.
  const orders = await call<{ items: { id: string }[] }>(
    'GET',
    `/orders?customerRef=${encodeURIComponent(`bob-${runId}@example.com`)}`,
  );
  expect(orders.status).toBe(200);
  const orderId = orders.json.items[0]?.id;
  expect(orderId).toBeTruthy();
  await page.goto(`${frontend()}/orders/${encodeURIComponent(orderId ?? '')}`);
  await expect(page.getByTestId('order-status')).toHaveAttribute('data-status', 'CONFIRMED');
  expect(await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth)).toBeLessThanOrEqual(0);
  await context.close();
});
