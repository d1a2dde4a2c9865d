import { useCallback, useEffect, useMemo, useState } from 'react';
import { ApiClient } from './api';
import { App } from './App';
import { loadConfig, type ShopConfig } from './config';

/** Loads /config.json, then the shop; a clear page when the config is missing. */
export function Boot() {
  const [config, setConfig] = useState<ShopConfig | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [attempt, setAttempt] = useState(0);

  useEffect(() => {
    let cancelled = false;
    setError(null);
    loadConfig()
      .then((c) => !cancelled && setConfig(c))
      .catch((e: unknown) => {
        // What went wrong is for developers (the console), not for customers.
        console.error('WooCom: the shop cannot start:', e, '(it needs /config.json with apiUrl and websocketUrl; see frontend/README.md)');
        if (!cancelled) setError(e instanceof Error ? e.message : String(e));
      });
    return () => {
      cancelled = true;
    };
  }, [attempt]);

  const retry = useCallback(() => setAttempt((a) => a + 1), []);
  const shop = useMemo(() => (config ? { config, api: new ApiClient(config.apiUrl) } : null), [config]);

  if (shop) return <App shop={shop} />;
  return (
    <main id="main" className="boot">
      <h1>WooCom</h1>
      {error ? (
        <div className="error" role="alert">
          <p>
            <strong>The shop is not available right now.</strong> Please try again in a moment.
          </p>
          <button type="button" onClick={retry}>
            Try again
          </button>
        </div>
      ) : (
        <p role="status">Loading the shop…</p>
      )}
    </main>
  );
}

