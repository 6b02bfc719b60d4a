// Builds an irregular heap and writes one heap snapshot of it: the shape
// that the generated `Item` heap (gen-large-snapshot.js) is not. Most
// objects there hang from one retainer in short identical chains, which the
// dominator pass folds away; here most objects have several retainers.
//
// Usage: node --max-old-space-size=12000 gen-irregular-snapshot.js OUT.heapsnapshot [units]
//
// Per unit: a Map (string keys built by concatenation, values shared with
// other units), two closures over the unit and a shared context, strings of
// every kind (cons, sliced, number strings), an array of links to other
// units (cross links and cycles), and now and then a Set. Every unit is held
// by the `all` array and by one of 16 bucket Maps; shared configuration
// objects are referenced from many units; a unit's label, code, handlers
// and one closure are each held from two places. A seeded generator keeps the file
// the same from run to run (same Node version).
'use strict';
const v8 = require('v8');
const out = process.argv[2];
const n = Number(process.argv[3] || 600_000);
if (!out) {
  console.error('usage: gen-irregular-snapshot.js OUT [units]');
  process.exit(2);
}

// xorshift32: the same heap on every run.
let seed = 0x9e3779b9;
function rnd(k) {
  seed ^= seed << 13;
  seed >>>= 0;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  seed >>>= 0;
  return seed % k;
}

const big = 'lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor '.repeat(64);
const shared = [];
for (let i = 0; i < Math.max(64, n >> 6); i++) {
  shared.push({ region: 'r' + (i % 13), limits: [i, i * 2, i * 3], flags: new Set(['a' + (i % 7), 'b' + (i % 5)]) });
}
const context = { clock: () => Date.now(), registry: new Map() };

function makeHandlers(unit, cfg) {
  let calls = 0;
  const onData = (x) => {
    calls++;
    return unit.links.length + x + cfg.limits[0];
  };
  function onClose() {
    return context.clock() - calls;
  }
  return { onData, onClose };
}

const all = [];
const buckets = Array.from({ length: 16 }, () => new Map());
for (let i = 0; i < n; i++) {
  const cfg = shared[rnd(shared.length)];
  const unit = {
    id: i,
    label: 'unit:' + cfg.region + ':' + i, // a cons string
    excerpt: big.slice(rnd(4000), 4000 + rnd(600)), // a sliced string
    code: String(i * 7919), // a number string
    cfg,
    attrs: new Map(),
    links: [],
  };
  const k = 2 + rnd(4);
  for (let j = 0; j < k; j++) {
    const v = rnd(3);
    const own = [j, i, cfg];
    unit.attrs.set('k' + j + '-' + (i & 255), v === 0 ? shared[rnd(shared.length)] : v === 1 && i > 0 ? all[rnd(i)] : own);
    if (v === 2) unit.last = own; // a second retainer
  }
  const links = 1 + rnd(4);
  for (let j = 0; j < links && i > 0; j++) unit.links.push(all[rnd(i)]);
  unit.handlers = makeHandlers(unit, cfg);
  unit.onClose = unit.handlers.onClose; // the closure has two retainers
  if (rnd(8) === 0) unit.seen = new Set([unit.code, cfg.region, unit.label]);
  context.registry.set(unit.code, unit.handlers); // so do the code and the handlers
  all.push(unit);
  buckets[rnd(16)].set(unit.label, unit); // and the label
}
globalThis.__keep = { all, buckets, shared, context };
const file = v8.writeHeapSnapshot(out);
console.log(file);
