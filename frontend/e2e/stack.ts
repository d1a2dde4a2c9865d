// The running stack, as global-setup found it, and REST calls the tests make
// on the shop's behalf (seeding products, moving an order along).
import AxeBuilder from '@axe-core/playwright';
import { expect, type Locator, type Page } from '@playwright/test';

function env(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run the suite with \`npm run e2e\` (global-setup starts the stack)`);
  return value;
}

export const frontend = (): string => env('WOOCOM_E2E_FRONTEND');
export const apiUrl = (): string => env('WOOCOM_E2E_API');

export async function call<T>(method: string, path: string, body?: unknown): Promise<{ status: number; json: T }> {
  const response = await fetch(apiUrl() + path, {
    method,
    headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new Error(`${method} ${path} → ${response.status}, not JSON: ${text.slice(0, 300)}`);
  }
  return { status: response.status, json: json as T };
}

export interface ProductBody {
  name: string;
  price: number;
  stock: number;
  description: string;
  currency?: string;
  category?: string;
}

export async function putProduct(id: string, product: ProductBody): Promise<void> {
  // Exactly the contract's fields: the API refuses unknown ones.
  const { name, description, price, currency, stock, category } = product;
  const body = { name, description, price, currency: currency ?? 'EUR', stock, category: category ?? '' };
  const { status, json } = await call<{ id: string; stock: number }>('PUT', `/products/${id}`, body);
  expect(status, `PUT /products/${id}: ${JSON.stringify(json)}`).toBe(200);
  expect(json).toMatchObject({ id, stock: product.stock });
}

/** A run-unique suffix, so the suite can run again against the same data. */
export const runId = `${Date.now().toString(36)}${Math.floor(Math.random() * 1296).toString(36)}`;

/** Waits until the page's live updates connection is open. */
export async function liveOn(page: Page): Promise<void> {
  await expect(page.locator('[data-live-state="open"]')).toBeVisible();
}

/** Axe-core's findings on the page as it is now (WCAG 2.1 A and AA rules): none expected. */
export async function accessibilityViolations(page: Page): Promise<string[]> {
  const results = await new AxeBuilder({ page }).withTags(['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']).analyze();
  return results.violations.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).join(', ')})`);
}

/** Presses Tab until `target` has focus (keyboard only), at most `limit` times. */
export async function tabTo(page: Page, target: Locator, limit = 40): Promise<void> {
  for (let i = 0; i < limit; i++) {
    if (await target.evaluate((el) => el === document.activeElement)) return;
    await page.keyboard.press('Tab');
  }
  await expect(target).toBeFocused();
}

export function card(page: Page, name: string) {
  return page.getByRole('article', { name });
}

declare global {
  interface Window {
    /** Each order status the page showed, in order (see recordOrderStatuses). */
    __orderStatuses?: string[];
  }
}

/**
 * From the page's next load on, records every order status it shows (the
 * `data-status` of `order-status`) in `window.__orderStatuses`, and counts
 * document loads in session storage (`e2e.loads`): a status that changes
 * with one load changed without a reload.
 */
export async function recordOrderStatuses(page: Page): Promise<void> {
  await page.addInitScript(() => {
    sessionStorage.setItem('e2e.loads', String(Number(sessionStorage.getItem('e2e.loads') ?? '0') + 1));
    const seen: string[] = [];
    window.__orderStatuses = seen;
    const look = () => {
      const status = document.querySelector('[data-testid="order-status"]')?.getAttribute('data-status');
      if (status && seen[seen.length - 1] !== status) seen.push(status);
    };
    new MutationObserver(look).observe(document, {
      subtree: true,
      childList: true,
      attributes: true,
      attributeFilter: ['data-status'],
    });
  });
}

export async function orderStatuses(page: Page): Promise<{ statuses: string[]; loads: number }> {
  return page.evaluate(() => ({
    statuses: window.__orderStatuses ?? [],
    loads: Number(sessionStorage.getItem('e2e.loads') ?? '0'),
  }));
}
