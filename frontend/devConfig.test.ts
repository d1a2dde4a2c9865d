import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { configResponse, readyFilePath } from './devConfig';

describe('dev /config.json from the ready file', () => {
  it('maps api and websocket to apiUrl and websocketUrl', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'woocom-ready-'));
    const file = path.join(dir, 'ready.json');
    writeFileSync(
      file,
      JSON.stringify({
        api: 'http://127.0.0.1:4000/local',
        websocket: 'ws://127.0.0.1:4001/local',
        aws: 'http://127.0.0.1:4002',
        health: 'http://127.0.0.1:4002/health',
        pid: 1234,
      }),
    );
    const res = await configResponse(file);
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toEqual({
      apiUrl: 'http://127.0.0.1:4000/local',
      websocketUrl: 'ws://127.0.0.1:4001/local',
      stack: 'local',
    });
  });

  it('answers 503 with the reason when the stack is not running', async () => {
    const res = await configResponse('/nonexistent/ready.json');
    expect(res.status).toBe(503);
    expect(JSON.parse(res.body).error.message).toContain('no ready file at /nonexistent/ready.json');
    const dir = mkdtempSync(path.join(tmpdir(), 'woocom-ready-'));
    writeFileSync(path.join(dir, 'ready.json'), '{"aws":"http://x"}');
    const bad = await configResponse(path.join(dir, 'ready.json'));
    expect(bad.status).toBe(503);
    expect(JSON.parse(bad.body).error.message).toContain('no "api" and "websocket"');
  });

  it('finds the ready file from WOOCOM_READY_FILE or ../.woocom/ready.json', () => {
    expect(readyFilePath({}, '/repo/frontend')).toBe('/repo/.woocom/ready.json');
    expect(readyFilePath({ WOOCOM_READY_FILE: '/tmp/r.json' }, '/repo/frontend')).toBe('/tmp/r.json');
  });
});
