import { describe, expect, it } from 'vitest';
import { ApiError, parseError } from './api';
import { ERROR_CODES, customerMessage, type Context } from './messages';

const CONTEXTS: Context[] = ['catalogue', 'product', 'basket', 'checkout', 'order', 'orders'];

describe('customer messages', () => {
  // Bug (issue #19): "invalid fields: quantity", "invalid fields: productId"
  // and server messages reached customers.
  it('turns every error code of the API into a sentence, never the server message', () => {
    const codes = [
      'bad_request',
      'validation_failed',
      'not_found',
      'method_not_allowed',
      'sold_out',
      'basket_closed',
      'invalid_transition',
      'conflict',
      'internal',
      'storage_unavailable',
    ];
    for (const code of codes) expect(ERROR_CODES).toContain(code);
    const serverText = 'invalid fields: quantity (DynamoDB said ValidationException)';
    for (const code of [...ERROR_CODES, 'something_new']) {
      for (const context of CONTEXTS) {
        const sentence = customerMessage(new ApiError(409, code, serverText, { quantity: 'must be from 1 to 99' }), context);
        expect(sentence, `${code} in ${context}`).toMatch(/^[A-Z].*\.$/);
        expect(sentence).not.toContain('invalid fields');
        expect(sentence).not.toContain('DynamoDB');
        expect(sentence).not.toMatch(/_/);
      }
    }
  });

  it('names what was wrong with the fields it knows', () => {
    const quantity = parseError(
      400,
      '{"error":{"code":"validation_failed","message":"invalid fields: quantity","fields":{"quantity":"must be from 1 to 99"}}}',
    );
    expect(customerMessage(quantity, 'basket')).toBe('Choose a quantity from 1 to 99.');
    const product = new ApiError(400, 'validation_failed', 'invalid fields: productId', { productId: 'x' });
    expect(customerMessage(product, 'product')).toBe('This product cannot be added to your basket.');
    const left = new ApiError(409, 'sold_out', 'only 2 of Mug in stock', { mug: '2' });
    expect(customerMessage(left, 'product')).toBe('Only 2 are left in stock.');
    const none = new ApiError(409, 'sold_out', 'only 0 of Mug in stock', { mug: '0' });
    expect(customerMessage(none, 'basket')).toBe('This product is sold out.');
    expect(customerMessage(new ApiError(404, 'not_found', 'no order o-1'), 'order')).toBe('We could not find this order.');
    expect(customerMessage(new ApiError(0, 'network', 'Failed to fetch'), 'catalogue')).toContain('Check your connection');
    expect(customerMessage(new TypeError('boom'), 'basket')).toBe('Something went wrong on our side. Please try again in a moment.');
  });
});
