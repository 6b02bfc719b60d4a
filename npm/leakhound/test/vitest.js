'use strict';
// require('leakhound/vitest'): Vitest is ESM; from CommonJS we can only offer the
// matchers (expect.extend(require('leakhound/vitest').matchers)), or the
// global expect when `globals: true`.
const { matchers } = require('./matchers.js');

if (typeof expect !== 'undefined' && expect && typeof expect.extend === 'function') {
  expect.extend(matchers);
}
module.exports = { matchers };
