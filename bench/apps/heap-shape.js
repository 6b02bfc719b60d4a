// A heap of one shape grown to a size, for bench/snapshot_cost.py:
//   node heap-shape.js maps|maps-split|strings|closures SIZE_MB
// prints `ready HEAP_USED ARRAY_BUFFERS BUILD_MS` once the JS heap (plus
// Buffers' backing stores for `strings`) holds SIZE_MB megabytes (10^6
// bytes), then idles until killed.
'use strict';
const [shape, sizeArg] = process.argv.slice(2);
const target = Number(sizeArg) * 1e6;
const held = (globalThis.held = []);
const started = Date.now();
const used = () => {
  const m = process.memoryUsage();
  return shape === 'strings' ? m.heapUsed + m.arrayBuffers : m.heapUsed;
};

function growMaps(perMap) {
  // Many small objects in Maps: a catalog of records (string key ->
  // {id, name, price}), in one Map or in Maps of `perMap` entries.
  let i = 0;
  let m = new Map();
  held.push(m);
  while (used() < target) {
    for (let k = 0; k < 100000; k++, i++) {
      if (m.size >= perMap) held.push((m = new Map()));
      m.set('sku-' + i, { id: i, name: 'item ' + i, price: i % 1000 });
    }
  }
}

function growStrings() {
  // Large strings and Buffers, 16 KiB each, half and half.
  let i = 0;
  while (used() < target) {
    for (let k = 0; k < 256; k++, i++) {
      if (i % 2) held.push(Buffer.alloc(16384, i & 0xff));
      // A flat one-byte string of its own (padEnd would share a rope).
      else held.push(Buffer.alloc(16384, 97 + (i % 26)).toString('latin1'));
    }
  }
}

function growClosures() {
  // Deep closures: chains of 500 functions, each closing over a record and
  // the previous function of its chain.
  let i = 0;
  while (used() < target) {
    for (let c = 0; c < 20; c++) {
      let prev = null;
      for (let d = 0; d < 500; d++, i++) {
        const record = { i, label: 'step ' + i };
        const before = prev;
        prev = function step() { return before ? before() + record.i : record.i; };
      }
      held.push(prev);
    }
  }
}

({
  maps: () => growMaps(Infinity),
  'maps-split': () => growMaps(100000),
  strings: growStrings,
  closures: growClosures,
})[shape]();
if (global.gc) global.gc();
const m = process.memoryUsage();
console.log(`ready ${m.heapUsed} ${m.arrayBuffers} ${Date.now() - started}`);
setInterval(() => {}, 1 << 30);
