'use strict';
// require('leakhound/jest') in a test or in setupFilesAfterEnv: adds the
// matchers to Jest's global expect (or pass `matchers` to expect.extend yourself).
const { matchers } = require('./matchers.js');

if (typeof expect !== 'undefined' && expect && typeof expect.extend === 'function') {
  expect.extend(matchers);
}
module.exports = { matchers };
