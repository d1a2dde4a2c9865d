import { expect, test } from '@playwright/test';
import {
  accessibilityViolations,
  call,
  card,
  frontend,
  liveOn,
  orderStatuses,
  putProduct,
  recordOrderStatuses,
  runId,
  tabTo,
} from './stack';

const mug = { id: `e2e-mug-${runId}`, name: `Enamel mug ${runId}`, price: 1250, stock: 10, description: 'Blue enamel, 350 ml' };
const pot = { id: `e2e-pot-${runId}`, name: `Teapot ${runId}`, price: 3400, stock: 2, description: 'Cast iron, 1 l' };
const bowl = { id: `e2e-bowl-${runId}`, name: `Rice bowl ${runId}`, price: 900, stock: 5, description: 'Stoneware, 12 cm' };
const lamp = { id: `e2e-lamp-${runId}`, name: `Desk lamp ${runId}`, price: 4500, stock: 6, description: 'Brass, 40 cm' };
const vase = { id: `e2e-vase-${runId}`, name: `Vase ${runId}`, price: 2000, stock: 9, description: 'Glazed', category: `Decor ${runId}` };
const longName = {
  id: `e2e-long-${runId}`,
  name: `Extraordinarily-long-hand-thrown-stoneware-serving-platter-with-reactive-glaze-${runId}`,
  price: 8800,
  stock: 3,
  description: 'A name with no spaces to break it',
};

test.beforeAll(async () => {
  await putProduct(mug.id, mug);
  await putProduct(pot.id, pot);
  await putProduct(bowl.id, bowl);
  await putProduct(lamp.id, lamp);
  await putProduct(vase.id, vase);
  await putProduct(longName.id, longName);
});

async function stockOf(id: string): Promise<number> {
  const { json } = await call<{ stock: number }>('GET', `/products/${id}`);
  return json.stock;
}

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
  expect(await accessibilityViolations(page)).toEqual([]);
  await mugCard.getByRole('link', { name: mug.name }).click();
  await expect(page).toHaveURL(new RegExp(`/products/${mug.id}$`));
  await expect(page.getByRole('heading', { level: 1, name: mug.name })).toBeVisible();
  await expect(page.getByText(mug.description)).toBeVisible();
  await expect(page).toHaveTitle(`${mug.name} · WooCom`);
  expect(await accessibilityViolations(page)).toEqual([]);

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
  expect(await accessibilityViolations(page)).toEqual([]);

  // Check out.
  await page.getByRole('link', { name: 'Check out' }).click();
  await expect(page).toHaveTitle('Checkout · WooCom');
  expect(await accessibilityViolations(page)).toEqual([]);
  await page.getByLabel('E-mail address').fill(`ann-${runId}@example.com`);
  await page.getByRole('button', { name: 'Place order' }).click();
  await expect(page).toHaveURL(/\/orders\/[^/]+$/);
  const orderId = decodeURIComponent(new URL(page.url()).pathname.split('/').pop() ?? '');
  await expect(page.getByRole('heading', { level: 1, name: 'Thank you for your order' })).toBeVisible();
  await expect(page.getByTestId('order-id')).toHaveText(orderId);
  await expect(page).toHaveTitle('Thank you for your order · WooCom');
  await expect(page.getByText(`2 × ${mug.name}`)).toBeVisible();
  expect(await accessibilityViolations(page)).toEqual([]);
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
  await page.getByLabel('E-mail address').fill(`cy-${runId}@example.com`);
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
  await page.getByLabel('E-mail address').fill(`bob-${runId}@example.com`);
  await page.getByRole('button', { name: 'Place order' }).click();
  const alert = page.getByRole('alert');
  await expect(alert).toContainText('Not enough stock to place your order.');
  await expect(alert).toContainText(`Only 1 of ${pot.name} is left (you asked for 2).`);
  await expect(page).toHaveURL(/\/checkout$/);

  // The basket marks the line, with "+" off, and offers to take it down to what is left.
  await alert.getByRole('link', { name: 'Change your basket' }).click();
  const line = page.getByRole('article', { name: pot.name });
  await expect(line.getByTestId('line-short')).toContainText('Only 1 is left; your basket holds 2.');
  await expect(line.getByRole('button', { name: `Increase quantity of ${pot.name}` })).toHaveAttribute('aria-disabled', 'true');
  expect(await accessibilityViolations(page)).toEqual([]);
  await line.getByRole('button', { name: 'Reduce to 1' }).click();
  await expect(page.getByLabel(`Quantity of ${pot.name}`, { exact: true })).toHaveValue('1');
  await expect(line.getByTestId('line-short')).toHaveCount(0);
  await page.getByRole('link', { name: 'Check out' }).click();
  // The address typed before is still there.
  await expect(page.getByLabel('E-mail address')).toHaveValue(`bob-${runId}@example.com`);
  await page.getByRole('button', { name: 'Place order' }).click();
  await expect(page).toHaveURL(/\/orders\/[^/]+$/);
  await expect(page.getByTestId('order-status')).toHaveAttribute('data-status', 'CONFIRMED');
});

test('the shop works on a phone-sized screen', async ({ browser }) => {
  const context = await browser.newContext({ viewport: { width: 375, height: 740 }, hasTouch: true, isMobile: true });
  const page = await context.newPage();
  await page.goto(`${frontend()}/`);
  await expect(card(page, mug.name)).toBeVisible();
  await expect(card(page, longName.name)).toBeVisible();
  // Nothing wider than the screen, long names included: no sideways scrolling.
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
  // The heading is words, not the 32-character id wrapping three times.
  const heading = page.getByRole('heading', { level: 1 });
  await expect(heading).toHaveText('Your order');
  const lineHeight = await heading.evaluate((h) => parseFloat(getComputedStyle(h).lineHeight));
  expect((await heading.boundingBox())?.height ?? 0).toBeLessThan(lineHeight * 1.5);
  expect(await accessibilityViolations(page)).toEqual([]);

  // A long product name wraps on its own page and in the basket.
  await page.goto(`${frontend()}/products/${longName.id}`);
  await expect(page.getByRole('heading', { level: 1, name: longName.name })).toBeVisible();
  expect(await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth)).toBeLessThanOrEqual(0);
  await context.close();
});

// Issue #19: stock limits were ignored until checkout (7 of 6 in "Add to
// basket", 50 in the basket, 150 typed and silently reverted).
test('quantities are bounded by stock where they are chosen, and the API refuses more too', async ({ page }) => {
  await page.goto(`${frontend()}/products/${lamp.id}`);
  const quantity = page.getByLabel('Quantity', { exact: true });
  await quantity.fill('7');
  await page.getByRole('button', { name: 'Add to basket' }).click();
  await expect(page.getByRole('alert')).toHaveText('Only 6 are available: choose 6 or fewer.');
  await quantity.fill('5');
  await page.getByRole('button', { name: 'Add to basket' }).click();
  await expect(page.getByTestId('in-basket')).toContainText('In your basket: 5');
  await quantity.fill('2');
  await page.getByRole('button', { name: 'Add to basket' }).click();
  await expect(page.getByRole('alert')).toHaveText('You can add 1 more: 6 in stock, 5 in your basket.');

  // The API refuses it as well, with a code the page turns into a sentence.
  const basketId = await page.evaluate(() => localStorage.getItem('woocom.basketId'));
  const refused = await call<{ error: { code: string; fields: Record<string, string> } }>('PUT', `/baskets/${basketId}/items/${lamp.id}`, {
    quantity: 50,
  });
  expect(refused.status).toBe(409);
  expect(refused.json.error.code).toBe('sold_out');
  expect(refused.json.error.fields).toEqual({ [lamp.id]: '6' });

  await page.getByRole('link', { name: 'View basket' }).click();
  const line = page.getByRole('article', { name: lamp.name });
  await expect(line.getByTestId('line-stock')).toHaveText('6 in stock');
  const input = page.getByLabel(`Quantity of ${lamp.name}`, { exact: true });
  await input.fill('150');
  await input.press('Enter');
  await expect(line.getByRole('alert')).toHaveText('Only 6 are in stock: choose 6 or fewer.');
  await expect(input).toHaveValue('150');
  await expect(input).toBeFocused();
  await input.press('Escape');
  await expect(input).toHaveValue('5');

  // Stock is live in the basket: someone buys 3, the line is marked.
  await putProduct(lamp.id, { ...lamp, stock: 3 });
  await expect(line.getByTestId('line-stock')).toHaveText('Only 3 left');
  await expect(line.getByTestId('line-short')).toContainText('Only 3 are left; your basket holds 5.');
  await putProduct(lamp.id, lamp);
  await expect(line.getByTestId('line-short')).toHaveCount(0);
});

// Issue #19: keyboard only, from the catalogue to the order page; focus stays
// on + after a change (it fell to the page body and the next Enter did nothing).
test('a customer checks out with the keyboard only', async ({ page }) => {
  await page.goto(`${frontend()}/`);
  await expect(card(page, vase.name)).toBeVisible();
  // The catalogue filtered by the vase's category (chosen with selectOption,
  // the one step here that is not key presses).
  await tabTo(page, page.getByRole('combobox', { name: 'Category' }));
  await page.getByRole('combobox', { name: 'Category' }).selectOption(vase.category);
  await expect(page.getByRole('article')).toHaveCount(1);
  await tabTo(page, card(page, vase.name).getByRole('link', { name: vase.name }));
  await page.keyboard.press('Enter');
  await expect(page.getByRole('heading', { level: 1, name: vase.name })).toBeVisible();
  await tabTo(page, page.getByLabel('Quantity', { exact: true }));
  await page.keyboard.press('Control+A');
  await page.keyboard.type('2');
  await page.keyboard.press('Enter');
  await expect(page.getByTestId('in-basket')).toContainText('In your basket: 2');
  await tabTo(page, page.locator('.notice-area').getByRole('link', { name: 'View basket' }));
  await page.keyboard.press('Enter');
  const plus = page.getByRole('button', { name: `Increase quantity of ${vase.name}` });
  await tabTo(page, plus);
  await page.keyboard.press('Enter');
  await expect(page.getByLabel(`Quantity of ${vase.name}`, { exact: true })).toHaveValue('3');
  await expect(plus).toBeFocused();
  await page.keyboard.press('Enter');
  await expect(page.getByLabel(`Quantity of ${vase.name}`, { exact: true })).toHaveValue('4');
  await page.keyboard.press('Shift+Tab');
  await page.keyboard.press('Shift+Tab');
  await expect(page.getByRole('button', { name: `Decrease quantity of ${vase.name}` })).toBeFocused();
  await page.keyboard.press('Enter');
  await expect(page.getByLabel(`Quantity of ${vase.name}`, { exact: true })).toHaveValue('3');
  await tabTo(page, page.getByRole('link', { name: 'Check out' }));
  await page.keyboard.press('Enter');
  await tabTo(page, page.getByLabel('E-mail address'));
  await page.keyboard.press('Control+A');
  await page.keyboard.type(`kim-${runId}@example.com`);
  await page.keyboard.press('Enter');
  await expect(page.getByRole('heading', { level: 1, name: 'Thank you for your order' })).toBeVisible();
  await expect(page.getByText(`3 × ${vase.name}`)).toBeVisible();

  // Cancelling from the order page returns the three vases to stock, once.
  expect(await stockOf(vase.id)).toBe(6);
  await tabTo(page, page.getByRole('button', { name: 'Cancel order' }));
  await page.keyboard.press('Enter');
  await expect(page.getByRole('button', { name: 'Yes, cancel the order' })).toBeFocused();
  await page.keyboard.press('Enter');
  await expect(page.getByTestId('order-status')).toHaveAttribute('data-status', 'CANCELLED');
  expect(await stockOf(vase.id)).toBe(9);

  // My orders lists it, by the address the shop kept.
  await page.getByRole('link', { name: 'My orders' }).first().click();
  await expect(page).toHaveTitle('My orders · WooCom');
  const orders = page.getByRole('list', { name: 'Your orders' });
  await expect(orders.getByRole('listitem')).toHaveCount(1);
  await expect(orders).toContainText('Cancelled');
  expect(await accessibilityViolations(page)).toEqual([]);
});

// Issue #19: a second tab kept showing a basket checked out in the first
// (badge 1), and its "+" emptied the basket without a word.
test('a second tab learns that its basket was checked out in the first', async ({ browser }) => {
  const context = await browser.newContext();
  const first = await context.newPage();
  await first.goto(`${frontend()}/products/${bowl.id}`);
  await first.getByRole('button', { name: 'Add to basket' }).click();
  await expect(first.getByTestId('in-basket')).toContainText('In your basket: 1');
  const second = await context.newPage();
  await second.goto(`${frontend()}/basket`);
  await expect(second.getByRole('article', { name: bowl.name })).toBeVisible();
  await expect(second.getByRole('link', { name: /^Basket/ })).toContainText('1');

  await first.goto(`${frontend()}/checkout`);
  await first.getByLabel('E-mail address').fill(`lee-${runId}@example.com`);
  await first.getByRole('button', { name: 'Place order' }).click();
  await expect(first.getByRole('heading', { level: 1, name: 'Thank you for your order' })).toBeVisible();
  const orderId = await first.getByTestId('order-id').textContent();

  const notice = second.getByTestId('checked-out-elsewhere');
  await expect(notice).toContainText('This basket was checked out in another tab or window.');
  await expect(notice.getByRole('link', { name: 'See that order' })).toHaveAttribute('href', `/orders/${orderId}`);
  await expect(second.getByRole('article', { name: bowl.name })).toHaveCount(0);
  await expect(second.getByRole('link', { name: /^Basket/ })).toHaveText('Basket');
  await context.close();
});

// Issue #19: when the answer to "Place order" was lost but the order was
// placed, the page said "Your order was not placed" and showed two retries.
test('a lost answer to "Place order" is checked, not reported as a failure', async ({ page }) => {
  await page.goto(`${frontend()}/products/${mug.id}`);
  await page.getByRole('button', { name: 'Add to basket' }).click();
  await expect(page.getByTestId('in-basket')).toBeVisible();
  let posts = 0;
  let sawChecking: () => void = () => {};
  const checkingShown = new Promise<void>((resolve) => (sawChecking = resolve));
  await page.route('**/orders', async (route) => {
    if (route.request().method() !== 'POST') return route.fallback();
    posts += 1;
    if (posts === 1) {
      await route.fetch(); // the order is placed...
      return route.abort('connectionreset'); // ...and its answer lost
    }
    await checkingShown;
    return route.continue();
  });
  await page.goto(`${frontend()}/checkout`);
  await page.getByLabel('E-mail address').fill(`max-${runId}@example.com`);
  await page.getByRole('button', { name: 'Place order' }).click();
  await expect(page.getByTestId('checking-order')).toContainText('we are checking your order');
  await expect(page.getByRole('button')).toHaveCount(0);
  await expect(page.getByText(/not placed/)).toHaveCount(0);
  sawChecking();
  await expect(page.getByRole('heading', { level: 1, name: 'Thank you for your order' })).toBeVisible();
  expect(posts).toBe(2);
  const placed = await call<{ items: unknown[] }>('GET', `/orders?customerRef=${encodeURIComponent(`max-${runId}@example.com`)}`);
  expect(placed.json.items).toHaveLength(1);
});
