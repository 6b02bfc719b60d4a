// Takes a heap snapshot of a page in headless Chromium over the DevTools
// protocol and writes it to OUT. Needs a Node with a global WebSocket (22+).
//
//   node chrome-snapshot.js CHROMIUM OUT
'use strict';
const { spawn } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const [chromium, out] = process.argv.slice(2);
const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'leakhound-chrome-'));
const page = 'data:text/html,' + encodeURIComponent(`<script>
  class Leaky { constructor(i) { this.el = document.createElement('div'); this.label = 'item ' + i; } }
  window.kept = [];
  for (let i = 0; i < 1000; i++) window.kept.push(new Leaky(i));
</script>`);
const chrome = spawn(chromium, [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--remote-debugging-address=127.0.0.1', '--remote-debugging-port=0',
  `--user-data-dir=${profile}`, page,
], { stdio: ['ignore', 'ignore', 'pipe'] });

const fail = (msg) => {
  console.error(`chrome-snapshot: ${msg}`);
  chrome.kill('SIGKILL');
  process.exit(1);
};
const timer = setTimeout(() => fail('timed out'), 60_000);

let stderr = '';
chrome.stderr.on('data', async (d) => {
  stderr += d;
  const m = stderr.match(/DevTools listening on ws:\/\/127\.0\.0\.1:(\d+)\//);
  if (!m || chrome.started) return;
  chrome.started = true;
  try {
    const port = m[1];
    let target;
    for (let i = 0; i < 50 && !target; i++) {
      const list = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json();
      target = list.find((t) => t.type === 'page' && t.url.startsWith('data:'));
      if (!target) await new Promise((r) => setTimeout(r, 100));
    }
    if (!target) fail('no page target');
    // Let the page's script run.
    await new Promise((r) => setTimeout(r, 500));
    const ws = new WebSocket(target.webSocketDebuggerUrl);
    const file = fs.openSync(out + '.part', 'w');
    let id = 0;
    const pending = new Map();
    const call = (method, params = {}) => new Promise((resolve, reject) => {
      const n = ++id;
      pending.set(n, { resolve, reject });
      ws.send(JSON.stringify({ id: n, method, params }));
    });
    ws.onmessage = (ev) => {
      const msg = JSON.parse(ev.data);
      if (msg.method === 'HeapProfiler.addHeapSnapshotChunk') fs.writeSync(file, msg.params.chunk);
      if (msg.id && pending.has(msg.id)) {
        const p = pending.get(msg.id);
        pending.delete(msg.id);
        msg.error ? p.reject(new Error(msg.error.message)) : p.resolve(msg.result);
      }
    };
    await new Promise((r, j) => { ws.onopen = r; ws.onerror = j; });
    await call('HeapProfiler.enable');
    await call('HeapProfiler.collectGarbage');
    await call('HeapProfiler.takeHeapSnapshot', { reportProgress: false });
    fs.closeSync(file);
    fs.renameSync(out + '.part', out);
    ws.close();
    clearTimeout(timer);
    chrome.on('exit', () => {
      try {
        fs.rmSync(profile, { recursive: true, force: true });
      } catch {
        // Chromium's helpers may still be writing; the OS temp dir is cleaned anyway.
      }
      process.exit(0);
    });
    chrome.kill('SIGKILL');
  } catch (e) {
    fail(e.stack || String(e));
  }
});
chrome.once('exit', (code) => { if (!chrome.started) fail(`chromium exited (${code}): ${stderr.slice(-500)}`); });
