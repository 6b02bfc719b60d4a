// leakhound/test under node:test, CommonJS.
'use strict';
const { test, after } = require('node:test');
const assert = require('node:assert');
const path = require('node:path');
const { expectNoLeak, expectListenersRestored, expectHandlesClosed } = require('leakhound/test');
const s = require('../subjects.cjs');
const checks = require('../checks.cjs');

const subjects = path.join(__dirname, '..', 'subjects.cjs');
after(() => s.cleanupLeaks());

test('expectNoLeak fails on a leak (CJS)', async () => {
  const err = await expectNoLeak(s.leakyRemember, { iterations: 100, rounds: 2 }).then(() => null, (e) => e);
  checks.assertLeakMessage(err, subjects);
});

test('expectNoLeak passes on clean code (CJS)', async () => {
  const report = await expectNoLeak(s.cleanRemember, { iterations: 100, rounds: 2 });
  assert.strictEqual(report.verdict, 'no-leak');
});

test('maxGrowth fails when the heap grows without one group growing every round', async () => {
  // One big array (2.4 MB) kept in the second round only: no steady suspect, but the heap grows.
  const kept = [];
  let round = 0;
  const err = await expectNoLeak(
    (i) => {
      if (i === 0 && round++ === 1) kept.push(Array.from({ length: 300_000 }, (_, k) => k));
    },
    { iterations: 10, rounds: 3, warmup: 0, maxGrowth: '1MB' }
  ).then(() => null, (e) => e);
  assert.ok(err && /grew .* more than maxGrowth 1\.0 MB/.test(err.message), String(err && err.message));
  kept.length = 0;
});

test('a function that throws: the error comes through, no snapshot stays behind', async () => {
  const os = require('node:os');
  const fs = require('node:fs');
  // Ours: snapshot files named after this process (other test files may run beside us).
  const ours = () =>
    fs
      .readdirSync(os.tmpdir())
      .filter((n) => n.startsWith('leakhound-test-'))
      .flatMap((n) => {
        try {
          return fs.readdirSync(path.join(os.tmpdir(), n)).filter((f) => f.startsWith(`${process.pid}-`));
        } catch (_) {
          return []; // another process removed its folder meanwhile
        }
      });
  let calls = 0;
  const boom = new Error('boom in the code under test');
  await assert.rejects(
    expectNoLeak(() => {
      if (++calls === 150) throw boom;
    }),
    (e) => e === boom
  );
  assert.deepStrictEqual(ours(), []);
});

test('listeners and handles (CJS)', async () => {
  const err = await expectListenersRestored(s.leakyMount).then(() => null, (e) => e);
  checks.assertListenersMessage(err, subjects);
  // CommonJS: the emitter is named by what holds it (`bus`, or `exports.bus` when the
  // shortest path from the roots comes through the module's exports).
  assert.match(err.message, /^  (?:exports\.)?bus \(EventEmitter\) "tick": 0 listeners before, 1 after$/m);
  assert.match(err.leakhound.problems[0].name, /^(?:exports\.)?bus$/);
  await expectListenersRestored(s.cleanMount);
  checks.assertHandlesMessage(await expectHandlesClosed(s.leakyPoll).then(() => null, (e) => e), subjects);
  await expectHandlesClosed(s.cleanServer);
});
