// A small HTTP service with a classic leak: every request's log entry is
// pushed into a module-level array that nothing ever trims.
//
//   [PORT=3000] node examples/demo/leaky-app.js [--snapshot OUT.heapsnapshot] [--requests N]
//
// With --snapshot it serves N requests to itself on 127.0.0.1, writes a heap
// snapshot and exits (what scripts/demo.sh does); without it, it just serves.
'use strict';
const http = require('http');
const v8 = require('v8');

class LogEntry {
  constructor(req) {
    this.url = req.url;
    this.headers = { ...req.headers };
    this.at = new Date().toISOString();
    this.body = 'x'.repeat(256) + Math.random();
  }
}

const requestLogs = []; // grows forever: the leak

const server = http.createServer((req, res) => {
  requestLogs.push(new LogEntry(req));
  res.end('ok\n');
});

const args = process.argv.slice(2);
const snapshotAt = args.indexOf('--snapshot');
const requests = Number(args[args.indexOf('--requests') + 1]) || 2000;

server.listen(Number(process.env.PORT) || 0, '127.0.0.1', async () => {
  const { port } = server.address();
  if (snapshotAt < 0) {
    console.log(`listening on http://127.0.0.1:${port}`);
    return;
  }
  const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  const one = () => new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: '/orders?id=' + Math.random(), agent }, (res) => {
      res.resume();
      res.on('end', resolve);
    }).on('error', reject);
  });
  for (let i = 0; i < requests; i += 8) await Promise.all(Array.from({ length: 8 }, one));
  agent.destroy();
  globalThis.gc?.();
  const file = v8.writeHeapSnapshot(args[snapshotAt + 1]);
  console.error(`served ${requests} requests; heap snapshot written to ${file}`);
  server.close();
});
