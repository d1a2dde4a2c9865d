// Serves /config.json for `npm run dev` from the ready file that
// `woocom-dev up` writes once the stack listens (.woocom/ready.json, or the
// path given with --ready-file).
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

/** The /config.json answer for a ready file: read on every request, so a restarted stack is picked up. */
export async function configResponse(file: string): Promise<{ status: number; body: string }> {
  try {
    const ready = JSON.parse(await readFile(file, 'utf8')) as ReadyFile;
    return { status: 200, body: JSON.stringify(configFromReady(ready)) };
  } catch (err) {
    const reason =
      (err as NodeJS.ErrnoException).code === 'ENOENT'
        ? `no ready file at ${file}: start the stack with \`woocom-dev up\` (it writes .woocom/ready.json), ` +
          'or point WOOCOM_READY_FILE at the file given to `woocom-dev up --ready-file`'
        : `cannot use ${file}: ${(err as Error).message}`;
    return { status: 503, body: JSON.stringify({ error: { code: 'stack_not_running', message: reason } }) };
  }
}

export function woocomConfigPlugin(root: string): Plugin {
  const handler = async (res: import('node:http').ServerResponse) => {
    const { status, body } = await configResponse(readyFilePath(process.env, root));
    res.statusCode = status;
    res.setHeader('Content-Type', 'application/json');
    res.setHeader('Cache-Control', 'no-store');
    res.end(body);
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
