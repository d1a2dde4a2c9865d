// What a customer reads when a request fails: one sentence per error code of
// the API (functions/README.md, "Errors"), in the customer's words. The
// server's own message is for developers and logs; it never reaches the page.
import { ApiError, type ApiErrorCode } from './api';

/** What the customer was doing, so the sentence can name it. */
export type Context = 'catalogue' | 'product' | 'basket' | 'checkout' | 'order' | 'orders';

const NOT_FOUND: Record<Context, string> = {
  catalogue: 'We could not find these products.',
  product: 'This product is no longer in our catalogue.',
  basket: 'We could not find your basket. It may have expired; add the products again.',
  checkout: 'We could not find your basket. It may have expired; add the products again.',
  order: 'We could not find this order.',
  orders: 'We could not find your orders.',
};

/** Sentences for the fields the API can name in `validation_failed`. */
const FIELD: Record<string, string> = {
  quantity: 'Choose a quantity from 1 to 99.',
  productId: 'This product cannot be added to your basket.',
  customerRef: 'Enter your e-mail address (at most 200 characters).',
  basketId: 'Your basket is empty. Add something before you check out.',
  clientKey: 'Your order could not be sent. Please try again.',
  status: 'This change to your order is not possible.',
};

type Sentence = (error: ApiError, context: Context) => string;

const SENTENCES: Record<ApiErrorCode, Sentence> = {
  bad_request: () => 'The page sent something the shop did not understand. Please reload the page and try again.',
  validation_failed: (error) => {
    const known = Object.keys(error.fields)
      .map((field) => FIELD[field])
      .filter((s): s is string => s !== undefined);
    return known.length > 0
      ? [...new Set(known)].join(' ')
      : 'Something in your request was not right. Please check it and try again.';
  },
  not_found: (_error, context) => NOT_FOUND[context],
  method_not_allowed: () => 'This action is not available. Please reload the page and try again.',
  sold_out: (error) => {
    const left = Object.values(error.fields)
      .map(Number)
      .filter((n) => Number.isFinite(n));
    if (left.length === 1 && (left[0] ?? 0) > 0) {
      const n = left[0] ?? 0;
      return `Only ${n} ${n === 1 ? 'is' : 'are'} left in stock.`;
    }
    return left.length === 1 ? 'This product is sold out.' : 'Some products do not have enough stock.';
  },
  basket_closed: () => 'This basket has already been checked out.',
  invalid_transition: (_error, context) =>
    context === 'order' ? 'This order can no longer be changed.' : 'This change is no longer possible.',
  conflict: () => 'Someone changed this at the same moment. Please try again.',
  internal: () => 'Something went wrong on our side. Please try again in a moment.',
  storage_unavailable: () => 'The shop is very busy right now. Please try again in a moment.',
  network: () => 'We could not reach the shop. Check your connection and try again.',
  unexpected_response: () => 'The shop sent an answer we did not understand. Please try again in a moment.',
};

function isKnown(code: string): code is ApiErrorCode {
  return Object.prototype.hasOwnProperty.call(SENTENCES, code);
}

/** The sentence for `error`, whatever it is; never the server's message. */
export function customerMessage(error: unknown, context: Context): string {
  if (!(error instanceof ApiError)) return SENTENCES.internal(new ApiError(0, 'internal', ''), context);
  if (isKnown(error.code)) return SENTENCES[error.code](error, context);
  return error.status >= 500 || error.status === 0
    ? SENTENCES.internal(error, context)
    : 'Something went wrong. Please try again.';
}

/** Every code the contract defines: the tests check each has a sentence. */
export const ERROR_CODES = Object.keys(SENTENCES) as ApiErrorCode[];
