// Builds a large steady heap and writes one heap snapshot of it.
// Usage: node --max-old-space-size=12000 gen-large-snapshot.js OUT.heapsnapshot [instances]
// Default: two million small class instances held in a Map and an array
// (on Node 20: about 13.0 million nodes, 33.2 million edges, 0.98 GB of
// snapshot; the node process needs about 7 GB or more of RSS).
'use strict';
const v8 = require('v8');
const out = process.argv[2];
const n = Number(process.argv[3] || 2_000_000);
if (!out) { console.error('usage: gen-large-snapshot.js OUT [instances]'); process.exit(2); }

class Item {
  constructor(i) {
    this.id = i;
    this.name = 'item-' + i;          // a distinct string per instance
    this.tags = [i & 7, i & 15];      // a small array per instance
    this.meta = { created: i * 3, owner: 'u' + (i % 1000) };
  }
}
const byId = new Map();
const all = [];
for (let i = 0; i < n; i++) {
  const it = new Item(i);
  all.push(it);
  if (i % 2 === 0) byId.set('k' + i, it);
}
globalThis.__keep = { byId, all };
const file = v8.writeHeapSnapshot(out);
console.log(file);
