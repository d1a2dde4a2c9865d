// Serves /config.json for `npm run dev` from the ready file that
// `woocom-dev up --ready-file <path>` writes once the stack listens.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Plugin } from 'vite';

export interface ReadyFile {
  api?: string;
  websocket?: string;
  aws?: string;
  health?: string;
  frontend?: string;
  pid?: number;
}

export function readyFilePath(env: NodeJS.ProcessEnv, root: string): string {
  return path.resolve(root, env.WOOCOM_READY_FILE ?? '../.woocom/ready.json');
}

/** The frontend's config from a ready file's contents, or why it cannot be made. */
export function configFromReady(ready: ReadyFile, stack = 'local'): { apiUrl: string; websocketUrl: string; stack: string } {
  if (typeof ready.api !== 'string' || typeof ready.websocket !== 'string') {
    throw new Error('the ready file has no "api" and "websocket" URLs');
  }
  return { apiUrl: ready.api, websocketUrl: ready.websocket, stack };
}

export function woocomConfigPlugin(root: string): Plugin {
  const handler = async (res: import('node:http').ServerResponse) => {
    const file = readyFilePath(process.env, root);
    res.setHeader('Content-Type', 'application/json');
    res.setHeader('Cache-Control', 'no-store');
    try {
      const ready = JSON.parse(await readFile(file, 'utf8')) as ReadyFile;
      res.end(JSON.stringify(configFromReady(ready)));
    } catch (err) {
      const reason =
        (err as NodeJS.ErrnoException).code === 'ENOENT'
          ? `no ready file at ${file}: is \`woocom-dev up --ready-file ${path.relative(path.resolve(root, '..'), file)}\` running?`
          : `cannot read ${file}: ${(err as Error).message}`;
      res.statusCode = 503;
      res.end(JSON.stringify({ error: { code: 'stack_not_running', message: reason } }));
    }
  };
  return {
    name: 'woocom-config',
    configureServer(server) {
      server.middlewares.use('/config.json', (_req, res) => void handler(res));
    },
    configurePreviewServer(server) {
      server.middlewares.use('/config.json', (_req, res) => void handler(res));
    },
  };
}
