// A real application's heap, written as one heap snapshot: a process that
// loads every package in fixtures/node_modules (except the TypeScript
// compiler: with it in the heap, Node 20 takes 30 s or more to write even a
// small snapshot), and serves REQUESTS loopback HTTP
// requests through express + express-session (the default MemoryStore
// keeps one session per cookie-less request), caching each response in
// lru-cache and counting it in prom-client. What the heap holds is what
// these libraries build, not a generator's pattern.
//
// Usage: node --max-old-space-size=12000 gen-app-snapshot.js OUT.heapsnapshot [requests]
// Needs `cd fixtures && npm ci` (the pinned packages).
'use strict';
const fs = require('fs');
const http = require('http');
const path = require('path');
const v8 = require('v8');

const out = process.argv[2];
const total = Number(process.argv[3] || 400_000);
if (!out) {
  console.error('usage: gen-app-snapshot.js OUT [requests]');
  process.exit(2);
}
const fixtures = path.resolve(__dirname, '..', 'fixtures');
const modules = path.join(fixtures, 'node_modules');
const req = (name) => require(path.join(modules, name));

// Every package the fixtures install, as an app's dependency tree would.
const loaded = {};
for (const entry of fs.readdirSync(modules)) {
  const names = entry.startsWith('@') ? fs.readdirSync(path.join(modules, entry)).map((s) => `${entry}/${s}`) : [entry];
  for (const name of names) {
    if (name.startsWith('.') || name.startsWith('@types/') || name === 'typescript') continue;
    try {
      loaded[name] = req(name);
    } catch {
      // Native or ESM-only packages that cannot load here are left out.
    }
  }
}

const t0 = Date.now();
const note = (what) => process.env.GEN_DEBUG && console.error(`${((Date.now() - t0) / 1000).toFixed(1)} s: ${what}`);
note('loaded');

const express = req('express');
const session = req('express-session');
const { LRUCache } = req('lru-cache');
const client = req('prom-client');

const cache = new LRUCache({ max: Math.max(1000, total) });
const served = new client.Counter({ name: 'bench_requests_total', help: 'Requests', labelNames: ['route', 'status'] });
const latency = new client.Histogram({ name: 'bench_latency_seconds', help: 'Latency', labelNames: ['route'] });
const app = express();
app.use(session({ secret: 'bench', resave: false, saveUninitialized: true }));
app.get('/item', (rq, rs) => {
  const end = latency.startTimer({ route: '/item' });
  const body = { id: rq.query.id, tags: String(rq.query.tags || '').split(','), at: Date.now(), agent: rq.get('user-agent') };
  rq.session.last = body.id;
  cache.set(`/item/${body.id}`, body);
  served.inc({ route: '/item', status: '200' });
  rs.json(body);
  end();
});

const server = app.listen(0, '127.0.0.1', async () => {
  const { port } = server.address();
  const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  let next = 0;
  const one = () =>
    new Promise((resolve, reject) => {
      const i = next++;
      http
        .get({ host: '127.0.0.1', port, agent, path: `/item?id=${i}&tags=t${i % 97},u${i % 13}` }, (res) => {
          res.resume();
          res.on('end', resolve);
        })
        .on('error', reject);
    });
  const worker = async () => {
    while (next < total) await one();
  };
  await Promise.all(Array.from({ length: 16 }, worker));
  agent.destroy();
  note('served');
  globalThis.__keep = { loaded, app, cache };
  const file = v8.writeHeapSnapshot(out);
  note(`${Object.keys(loaded).length} packages, ${total} requests`);
  console.log(file);
  process.exit(0);
});
