// The smallest-leak ladder's app: every EVERY-th request keeps its short id
// (a 6-character string: 24 B on the heap plus an 8 B array slot, 32 B) in
// a module-level array that nothing trims: 32/EVERY bytes per request.
// EVERY=0 keeps nothing (the control).
'use strict';
const http = require('http');

const every = Number(process.env.EVERY || 1);
const keptIds = [];
let seq = 0;

const server = http.createServer((req, res) => {
  seq++;
  if (every > 0 && seq % every === 0) keptIds.push((1e9 + seq).toString(36));
  res.end('ok\n');
});
server.listen(Number(process.env.PORT) || 0, '127.0.0.1');
