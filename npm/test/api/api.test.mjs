// The JS API as an ESM user calls it, on real processes. Each document is
// saved for the type check (gen-types-check.cjs compiles it against index.d.ts).
import { test } from 'node:test';
import assert from 'node:assert';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import net from 'node:net';
import { run, diagnose, snapshot, watch, LeakhoundError } from 'leakhound';
import * as api from 'leakhound';
import { createRequire } from 'node:module';

const fixtures = process.env.LEAKHOUND_FIXTURES;
const out = process.env.LEAKHOUND_JSON_OUT;
const save = (name, doc) => fs.writeFileSync(path.join(out, `${name}.json`), JSON.stringify(doc));
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'leakhound-api-'));

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

test('ESM and CJS are one module (no dual-package copy)', () => {
  const cjs = createRequire(import.meta.url)('leakhound');
  assert.strictEqual(cjs.run, run);
  assert.strictEqual(cjs.LeakhoundError, LeakhoundError);
  assert.strictEqual(api.default, cjs);
});

test('the matcher entries load in both module systems', async () => {
  const names = ['toCloseHandles', 'toLeak', 'toRestoreListeners'];
  const req = createRequire(import.meta.url);
  assert.deepStrictEqual(Object.keys((await import('leakhound/jest')).matchers).sort(), names);
  assert.deepStrictEqual(Object.keys(req('leakhound/jest').matchers).sort(), names);
  // The CommonJS Vitest entry only exports them (Vitest itself is ESM-only).
  assert.deepStrictEqual(Object.keys(req('leakhound/vitest').matchers).sort(), names);
  const t = await import('leakhound/test');
  assert.strictEqual(t.expectNoLeak, req('leakhound/test').expectNoLeak);
});

test('run() and diagnose() find the listener leak', async () => {
  const port = await freePort();
  const keep = path.join(tmp, 'snaps');
  const report = await run({
    command: [process.execPath, path.join(fixtures, 'leaks/listeners.js')],
    env: { PORT: String(port) },
    load: `http://127.0.0.1:${port}/item?id=1`,
    requests: 300,
    warmup: 300,
    snapshots: 3,
    keep,
  });
  save('run', report);
  assert.strictEqual(report.command, 'run');
  assert.strictEqual(report.verdict, 'leak');
  assert.strictEqual(report.suspects[0].pattern, 'event-listeners');
  assert.strictEqual(report.suspects[0].location.line, 13);
  const files = report.snapshots.map((s) => s.file);
  assert.strictEqual(files.length, 3);
  const d = await diagnose(files, { minGrowth: '64kB' });
  save('diagnose', d);
  assert.strictEqual(d.command, 'diagnose');
  assert.strictEqual(d.verdict, 'leak');
  assert.strictEqual(d.suspects[0].accumulator.name, 'bus._events.tick');
});

test('snapshot() writes the snapshot of a started process', async () => {
  const file = path.join(tmp, 'holder.heapsnapshot');
  const r = await snapshot({ command: [process.execPath, path.join(fixtures, 'live/holder.js')], output: file, gc: true });
  save('snapshot', r);
  assert.strictEqual(r.file, file);
  assert.strictEqual(fs.statSync(file).size, r.bytes);
  assert.match(fs.readFileSync(file, 'utf8').slice(0, 20), /^\{"snapshot":/);
});

test('watch() follows the floor for a duration', async () => {
  const r = await watch({ command: [process.execPath, path.join(fixtures, 'live/leak.js')], duration: '2s', interval: 250, forceGc: true });
  save('watch', r);
  assert.strictEqual(r.command, 'watch');
  assert.strictEqual(r.ended, 'duration');
  assert.strictEqual(r.floor_source, 'forced-gc');
  assert.ok(r.samples.length >= 4, `${r.samples.length} samples`);
});

test('errors reject with the binary\'s one line and exit status', async () => {
  const bad = path.join(tmp, 'not-a-snapshot.heapsnapshot');
  fs.writeFileSync(bad, '{"snapshot": {"meta"');
  const err = await diagnose([bad, bad, bad]).then(() => null, (e) => e);
  assert.ok(err instanceof LeakhoundError, String(err));
  assert.strictEqual(err.exitCode, 2);
  assert.match(err.message, /not-a-snapshot\.heapsnapshot/);
  assert.strictEqual(err.message.split('\n').length, 1);
  await assert.rejects(() => snapshot({ output: path.join(tmp, 'x'), pid: 1, command: ['node'] }), /exactly one of pid, inspect or command/);
});

test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));
