// Three heap snapshots of one process: a large steady heap (a cache of
// `Item`s that never changes) with a leak on top (every "request" pushes a
// `LeakedRecord` into a module-level array), plus per-request garbage.
// Usage: node --max-old-space-size=8000 gen-leak-snapshots.js OUTDIR [steady] [leak-per-step]
// Default: 500,000 steady items (~250 MB snapshots), 200,000 leaked records per step.
'use strict';
const v8 = require('v8');
const fs = require('fs');
const path = require('path');
const [outDir, steadyArg, leakArg] = process.argv.slice(2);
if (!outDir) { console.error('usage: gen-leak-snapshots.js OUTDIR [steady] [leak-per-step]'); process.exit(2); }
const steady = Number(steadyArg || 500_000);
const perStep = Number(leakArg || 200_000);
fs.mkdirSync(outDir, { recursive: true });

class Item {
  constructor(i) {
    this.id = i;
    this.name = 'item-' + i;
    this.tags = [i & 7, i & 15];
    this.meta = { created: i * 3, owner: 'u' + (i % 1000) };
  }
}
class LeakedRecord {
  constructor(i) {
    this.seq = i;
    this.url = '/orders/' + i;
    this.at = Date.now();
  }
}
const byId = new Map();
const all = [];
for (let i = 0; i < steady; i++) {
  const it = new Item(i);
  all.push(it);
  if (i % 2 === 0) byId.set('k' + i, it);
}
globalThis.__steady = { byId, all };

const requestLog = []; // the leak
let seq = 0;
function request() {
  requestLog.push(new LeakedRecord(seq++));
  const garbage = [];
  for (let j = 0; j < 4; j++) garbage.push({ j, s: 'tmp' + j + seq });
  return garbage.length;
}
globalThis.__leak = requestLog;

for (let k = 1; k <= 3; k++) {
  if (k > 1) for (let i = 0; i < perStep; i++) request();
  const file = path.join(outDir, `s${k}.heapsnapshot`);
  v8.writeHeapSnapshot(file);
  console.log(file);
}
