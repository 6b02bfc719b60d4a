// Jest's sandboxed globals: a leak into the test file's own global object
// (not Node's) is found and named at this file's line (babel-jest reprints this
// file; leakhound maps the line back through its inline source map).
const { expectNoLeak } = require('leakhound/test');
const checks = require('../checks.cjs');

class SessionRecord {
  constructor(i) {
    this.i = i;
    this.text = `session ${i} `.repeat(8);
  }
}

afterAll(() => {
  delete globalThis.sessionRecords;
});

test('a leak into the sandbox global is named', async () => {
  globalThis.sessionRecords = [];
  const err = await expectNoLeak((i) => {
    globalThis.sessionRecords.push(new SessionRecord(i));
  }, { rounds: 2 }).then(() => null, (e) => e);
  expect(err && err.code).toBe('ERR_ASSERTION');
  expect(err.message).toContain('sessionRecords');
  expect(err.message).toContain(checks.lineOf(__filename, 'constructor(i)'));
});
