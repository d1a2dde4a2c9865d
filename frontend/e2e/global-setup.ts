// Starts the real stack with `woocom-dev up` for the whole e2e run, as a
// developer or CI would: free ports, scratch data, a ready file to wait on.
// The devserver builds this frontend and serves it (with config.json) at the
// ready file's `frontend` URL; the tests use nothing else.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '..', '..');
const READY_TIMEOUT_MS = Number(process.env.WOOCOM_E2E_READY_TIMEOUT_MS ?? 20 * 60_000);

interface Ready {
  api: string;
  websocket: string;
  aws?: string;
  health?: string;
  frontend?: string;
  pid?: number;
}

function tail(file: string, lines = 40): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
}

async function waitForReady(file: string, child: ChildProcess, log: string): Promise<Ready> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`woocom-dev up exited (${child.exitCode ?? child.signalCode}) before it was ready:\n${tail(log)}`);
    }
    if (existsSync(file)) {
      try {
        return JSON.parse(readFileSync(file, 'utf8')) as Ready;
      } catch {
        /* being written: the devserver renames it into place, but be lenient */
      }
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`woocom-dev up was not ready after ${READY_TIMEOUT_MS / 1000}s:\n${tail(log)}`);
}

export default async function globalSetup(): Promise<() => Promise<void>> {
  const bin = process.env.WOOCOM_DEV ?? path.join(repoRoot, 'target', 'debug', 'woocom-dev');
  if (!existsSync(bin)) {
    throw new Error(`no woocom-dev at ${bin}: run \`cargo build -p woocom-dev\` in ${repoRoot} or set WOOCOM_DEV`);
  }
  // Outside the frontend folder, so the devserver does not see it as a source change.
  const tmp = mkdtempSync(path.join(tmpdir(), 'woocom-e2e-'));
  const readyFile = path.join(tmp, 'ready.json');
  const log = path.join(tmp, 'woocom-dev.log');
  const out = openSync(log, 'a');
  const args = ['up', '--free-ports', '--no-watch', '--no-seed', '--ready-file', readyFile, '--data', path.join(tmp, 'data')];
  process.stderr.write(`e2e: starting ${bin} ${args.join(' ')} (log: ${log})\n`);
  const child = spawn(bin, args, { cwd: repoRoot, stdio: ['ignore', out, out] });

  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      await exited(child);
      clearTimeout(killer);
    }
    if (process.env.WOOCOM_E2E_KEEP) process.stderr.write(`e2e: kept ${tmp}\n`);
    else rmSync(tmp, { recursive: true, force: true });
  };

  let ready: Ready;
  try {
    ready = await waitForReady(readyFile, child, log);
    if (!ready.frontend) {
      throw new Error(
        `the ready file has no "frontend" URL (keys: ${Object.keys(ready).join(', ')}): ` +
          'woocom-dev up must build and serve frontend/dist with config.json ([frontend] in dev.toml)',
      );
    }
  } catch (err) {
    await stop();
    throw err;
  }
  process.env.WOOCOM_E2E_FRONTEND = ready.frontend.replace(/\/+$/, '');
  process.env.WOOCOM_E2E_API = ready.api.replace(/\/+$/, '');
  process.env.WOOCOM_E2E_WEBSOCKET = ready.websocket;
  process.env.WOOCOM_E2E_LOG = log;
  process.stderr.write(`e2e: stack ready, frontend ${ready.frontend}, api ${ready.api}\n`);
  return stop;
}
