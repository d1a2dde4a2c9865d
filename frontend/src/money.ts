/** The reader's language, so prices read the way they expect. */
function defaultLocale(): string | undefined {
  return typeof navigator !== 'undefined' && navigator.language ? navigator.language : undefined;
}

/** Formats an integer amount of minor units (cents) in its ISO 4217 currency. */
export function formatMoney(minor: number, currency: string, locale: string | undefined = defaultLocale()): string {
  let format: Intl.NumberFormat;
  try {
    format = new Intl.NumberFormat(locale, { style: 'currency', currency });
  } catch {
    // An unknown currency code: still show the amount, with the code.
    return `${(minor / 100).toFixed(2)} ${currency}`;
  }
  // The currency's own minor unit: 2 for EUR/USD, 0 for JPY, 3 for KWD.
  const digits = format.resolvedOptions().maximumFractionDigits ?? 2;
  return format.format(minor / 10 ** digits);
}
