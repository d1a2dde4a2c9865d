/** Formats an integer amount of minor units (cents) in its ISO 4217 currency. */
export function formatMoney(minor: number, currency: string, locale?: string): string {
  const format = new Intl.NumberFormat(locale, { style: 'currency', currency });
  // The currency's own minor unit: 2 for EUR/USD, 0 for JPY, 3 for KWD.
  const digits = format.resolvedOptions().maximumFractionDigits ?? 2;
  return format.format(minor / 10 ** digits);
}
