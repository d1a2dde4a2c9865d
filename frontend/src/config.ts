/**
 * Where the running stack is. The same build runs against `woocom-dev up`
 * and from S3/CloudFront, so the URLs come from /config.json at start, never
 * from the bundle.
 */
export interface ShopConfig {
  apiUrl: string;
  websocketUrl: string;
  stack?: string;
}

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

export async function loadConfig(
  fetchImpl: FetchLike = (input, init) => globalThis.fetch(input, init),
  url = '/config.json',
): Promise<ShopConfig> {
  let response: Response;
  try {
    response = await fetchImpl(url, { cache: 'no-store', headers: { Accept: 'application/json' } });
  } catch {
    throw new ConfigError(`Could not fetch ${url}: the server did not answer.`);
  }
  const text = await response.text().catch(() => '');
  if (!response.ok) {
    let detail = '';
    try {
      const json: unknown = JSON.parse(text);
      if (typeof json === 'object' && json !== null && 'error' in json) {
        const e = (json as { error: unknown }).error;
        detail = typeof e === 'string' ? e : typeof e === 'object' && e && 'message' in e ? String(e.message) : '';
      }
    } catch {
      /* not JSON: the status says enough */
    }
    throw new ConfigError(`Could not load ${url} (HTTP ${response.status})${detail ? `: ${detail}` : '.'}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new ConfigError(`${url} is not JSON.`);
  }
  return parseConfig(json, url);
}

export function parseConfig(json: unknown, source = '/config.json'): ShopConfig {
  if (typeof json !== 'object' || json === null) throw new ConfigError(`${source} is not a JSON object.`);
  const c = json as Record<string, unknown>;
  const missing = ['apiUrl', 'websocketUrl'].filter((k) => typeof c[k] !== 'string' || c[k] === '');
  if (missing.length) throw new ConfigError(`${source} is missing ${missing.join(' and ')}.`);
  const config: ShopConfig = { apiUrl: c.apiUrl as string, websocketUrl: c.websocketUrl as string };
  if (typeof c.stack === 'string') config.stack = c.stack;
  return config;
}
