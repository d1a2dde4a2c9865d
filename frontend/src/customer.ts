// The customer reference the shop keeps: the e-mail address of the last
// order placed in this browser. "My orders" lists the orders placed with it.

export const CUSTOMER_KEY = 'woocom.customerRef';

export function readCustomerRef(): string | null {
  try {
    return localStorage.getItem(CUSTOMER_KEY);
  } catch {
    return null;
  }
}

export function writeCustomerRef(ref: string): void {
  try {
    localStorage.setItem(CUSTOMER_KEY, ref);
  } catch {
    /* private mode: "My orders" asks for the address instead */
  }
}
