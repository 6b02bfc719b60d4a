'use strict';
// What every runner's tests assert about a helper's failure: the message
// names the pattern, the accumulator, the user's file:line and the fix.
const assert = require('assert');
const fs = require('fs');
const path = require('path');

/** `subjects.cjs:8` for the first line of `file` containing `text`. */
function lineOf(file, text) {
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  const i = lines.findIndex((l) => l.includes(text));
  assert.ok(i >= 0, `${text} not in ${file}`);
  return `${path.basename(file)}:${i + 1}:`;
}

// From a helper: node's AssertionError with the report attached. From a
// matcher (viaMatcher): the runner's own assertion error, same message.
function assertFailure(err, viaMatcher) {
  assert.ok(err, 'the helper did not fail');
  if (viaMatcher) {
    assert.ok(err instanceof Error && !err.leakhound, `not a matcher failure: ${err && err.stack}`);
    return;
  }
  assert.strictEqual(err.code, 'ERR_ASSERTION', `not an AssertionError: ${err && err.stack}`);
  assert.strictEqual(err.name, 'AssertionError');
  assert.ok(err.leakhound, 'no report attached');
}

// Under Vitest (viteModules) the module runs inside Vite's module runner: the
// snapshot has no name for the module-level variable (a numbered context
// slot), so the pattern is the generic one; path, line and fix are still there.
function assertLeakMessage(err, subjects, viaMatcher, viteModules) {
  assertFailure(err, viaMatcher);
  const m = err.message;
  const named = viteModules ? ['[unbounded-growth]', 'Entry'] : ['[global-collection]', ': entries'];
  for (const want of ['the function leaks', ...named, 'path:', lineOf(subjects, 'constructor(id)'), 'fix:']) {
    assert.ok(m.includes(want), `leak message lacks ${JSON.stringify(want)}:\n${m}`);
  }
}

function assertListenersMessage(err, subjects, viaMatcher, viteModules) {
  assertFailure(err, viaMatcher);
  const m = err.message;
  // Named from a snapshot when the path ends in a variable or property:
  // `bus (EventEmitter)` (CommonJS); an ES module's export cell has no name,
  // nor has a module variable under Vite's module runner: the class then.
  assert.match(m, /(?:bus \(EventEmitter\)|EventEmitter) "tick": 0 listeners before, 1 after/);
  const named = viteModules ? [] : ['held by: '];
  for (const want of [...named, 'added:   onTick', lineOf(subjects, "bus.on('tick', function onTick")]) {
    assert.ok(m.includes(want), `listener message lacks ${JSON.stringify(want)}:\n${m}`);
  }
}

function assertHandlesMessage(err, subjects, viaMatcher) {
  assertFailure(err, viaMatcher);
  const m = err.message;
  const line = lineOf(subjects, 'leftOpen.push(setInterval');
  for (const want of ['timer: setInterval every 60000 ms', `callback poll ${path.basename(subjects)}`, `opened at`, line]) {
    assert.ok(m.includes(want), `handles message lacks ${JSON.stringify(want)}:\n${m}`);
  }
}

module.exports = { lineOf, assertLeakMessage, assertListenersMessage, assertHandlesMessage };
