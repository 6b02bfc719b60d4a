// The JS API through require(): same functions, and snapshot() on a real
// process. Three snapshot() calls are three inspector sessions, which
// renumber V8's object ids, so diagnose() must refuse them as a series
// (one line, exit 2) instead of comparing unrelated ids.
'use strict';
const { test } = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const leakhound = require('leakhound');

test('require("leakhound") has the documented functions', () => {
  for (const name of ['run', 'diagnose', 'snapshot', 'watch', 'findBinary']) assert.strictEqual(typeof leakhound[name], 'function', name);
  assert.ok(fs.existsSync(leakhound.findBinary()));
});

test('snapshot() three times then diagnose(): separate sessions are refused as a series', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'leakhound-api-cjs-'));
  try {
    const { spawn } = require('node:child_process');
    const app = spawn(process.execPath, ['--inspect=127.0.0.1:0', path.join(process.env.LEAKHOUND_FIXTURES, 'live/holder.js')], { stdio: ['ignore', 'ignore', 'pipe'] });
    const addr = await new Promise((resolve, reject) => {
      let err = '';
      app.stderr.on('data', (b) => {
        err += b;
        const m = /ws:\/\/(127\.0\.0\.1:\d+)\//.exec(err);
        if (m) resolve(m[1]);
      });
      app.on('exit', () => reject(new Error(`app exited: ${err}`)));
    });
    try {
      const files = [];
      for (let i = 1; i <= 3; i++) {
        const r = await leakhound.snapshot({ inspect: addr, output: path.join(dir, `s${i}.heapsnapshot`), gc: true });
        files.push(r.file);
      }
      for (const f of files) assert.strictEqual(fs.statSync(f).mode & 0o777, 0o600, `${f} is private`);
      const err = await leakhound.diagnose(files).then(() => null, (e) => e);
      assert.ok(err instanceof leakhound.LeakhoundError, String(err));
      assert.strictEqual(err.exitCode, 2);
      assert.match(err.message, /not snapshots of one process taken in one inspector session/);
      assert.strictEqual(err.message.split('\n').length, 1);
    } finally {
      app.kill();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
