'use strict';
// leakhound supervise: preloaded into each worker with `node --require`.
//
// - The app's `server.listen(PORT)` is given the listening socket leakhound
//   holds (inherited as a file descriptor), so every worker accepts from one
//   kernel queue and a worker that stops accepting loses no connection.
// - Once a second it reports the heap (used, total, limit) and the heap used
//   after each full GC (the post-GC floor) on the control socket.
// - On SIGTERM it stops accepting, answers the requests in flight with
//   `Connection: close`, closes keep-alive connections once they are idle,
//   optionally writes a heap snapshot, and exits.
//
// Without leakhound's environment (for instance in a child process the app
// forks, which inherits the --require flag) it does nothing.
(function leakhoundShim() {
  const env = process.env;
  const listenFd = Number(env.LEAKHOUND_LISTEN_FD);
  const controlFd = Number(env.LEAKHOUND_CONTROL_FD);
  const sharedPort = Number(env.LEAKHOUND_PORT);
  const intervalMs = Number(env.LEAKHOUND_INTERVAL_MS) || 1000;
  const idleCloseMs = Number(env.LEAKHOUND_IDLE_CLOSE_MS) || 1000;
  const waitReady = env.LEAKHOUND_WAIT_READY === '1';
  if (!(listenFd >= 0) || !(controlFd >= 0) || !(sharedPort > 0)) return;
  // Children of the app must not take the shared socket or the control
  // socket for their own.
  for (const k of Object.keys(env)) if (k.startsWith('LEAKHOUND_')) delete env[k];

  const net = require('net');
  const v8 = require('v8');

  const control = new net.Socket({ fd: controlFd, readable: true, writable: true });
  control.unref(); // never keeps the app alive
  control.on('error', () => {}); // leakhound gone: its death signal ends us anyway
  function send(message) {
    if (!control.destroyed) control.write(JSON.stringify(message) + '\n');
  }

  let snapshotPath = null;
  let pending = '';
  control.setEncoding('utf8');
  control.on('data', (chunk) => {
    pending += chunk;
    let nl;
    while ((nl = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      let cmd;
      try { cmd = JSON.parse(line); } catch (_) { continue; }
      if (cmd.cmd === 'snapshot-on-exit' && typeof cmd.path === 'string') snapshotPath = cmd.path;
    }
  });

  // ---- the shared listening socket ---------------------------------------
  function requestedPort(args) {
    let a = args[0];
    if (a !== null && typeof a === 'object') {
      if (a._handle || a.handle || a.fd !== undefined || a.path !== undefined) return undefined;
      a = a.port;
    }
    if (typeof a === 'number') return a;
    if (typeof a === 'string' && /^[0-9]+$/.test(a)) return Number(a);
    return undefined;
  }

  let shared = null; // the server that listens on leakhound's socket
  const connections = new Map(); // socket -> { busy, idleSince, res }
  const originalListen = net.Server.prototype.listen;
  net.Server.prototype.listen = function listen(...args) {
    const port = requestedPort(args);
    if (shared === null && port === sharedPort) {
      shared = this;
      adopt(this);
      const callback = typeof args[args.length - 1] === 'function' ? args[args.length - 1] : undefined;
      this.once('listening', () => {
        const a = this.address();
        send({ t: 'listening', address: a && typeof a === 'object' ? `${a.address}:${a.port}` : String(a) });
      });
      return callback
        ? originalListen.call(this, { fd: listenFd }, callback)
        : originalListen.call(this, { fd: listenFd });
    }
    // Another port: not shared. Reported so that leakhound can say which
    // port the app used when it never listens on the shared one.
    send({ t: 'listen-elsewhere', port: port === undefined ? null : port });
    return originalListen.apply(this, args);
  };

  function isHttp(server) {
    return typeof server.closeIdleConnections === 'function' || server.listenerCount('request') > 0;
  }

  function track(socket) {
    let st = connections.get(socket);
    if (!st) {
      st = { busy: 0, idleSince: Date.now(), res: null };
      connections.set(socket, st);
      socket.once('close', () => connections.delete(socket));
    }
    return st;
  }

  function adopt(server) {
    if (!isHttp(server)) return;
    server.on('connection', track);
    // First among the request listeners, so the header is set before the
    // app writes its response.
    server.prependListener('request', (req, res) => {
      const st = track(req.socket);
      st.busy += 1;
      st.res = res;
      if (draining) res.setHeader('Connection', 'close');
      let done = false;
      const finished = () => {
        if (done) return;
        done = true;
        st.busy -= 1;
        if (st.res === res) st.res = null;
        st.idleSince = Date.now();
      };
      res.once('finish', finished);
      res.once('close', finished);
    });
  }

  // ---- explicit readiness (PM2's `process.send('ready')`) ----------------
  if (waitReady && typeof process.send !== 'function') {
    process.send = function send_(message, ...rest) {
      if (message === 'ready' || (message && message.type === 'ready')) send({ t: 'ready' });
      const cb = rest.find((x) => typeof x === 'function');
      if (cb) process.nextTick(cb, null);
      return true;
    };
  }

  // ---- memory reports -----------------------------------------------------
  // v8.GCProfiler (Node >= 18.15) gives the exact heap used after each
  // Mark-Compact; older Node: the heap used when the GC is observed.
  let profiler = null;
  let observedFloors = [];
  if (typeof v8.GCProfiler === 'function') {
    profiler = new v8.GCProfiler();
    profiler.start();
  } else {
    try {
      const { PerformanceObserver, constants } = require('perf_hooks');
      const obs = new PerformanceObserver((list) => {
        for (const e of list.getEntries()) {
          const kind = e.detail ? e.detail.kind : e.kind;
          if (kind === constants.NODE_PERFORMANCE_GC_MAJOR) observedFloors.push(v8.getHeapStatistics().used_heap_size);
        }
      });
      obs.observe({ entryTypes: ['gc'] });
    } catch (_) { /* no floors */ }
  }
  function takeFloors() {
    if (profiler === null) {
      const f = observedFloors;
      observedFloors = [];
      return f;
    }
    const r = profiler.stop();
    profiler = new v8.GCProfiler();
    profiler.start();
    const floors = [];
    for (const s of (r && r.statistics) || []) {
      if (s.gcType === 'MarkSweepCompact') floors.push(s.afterGC.heapStatistics.usedHeapSize);
    }
    return floors;
  }
  const limit = v8.getHeapStatistics().heap_size_limit;
  const reporter = setInterval(() => {
    const m = process.memoryUsage();
    send({
      t: 'mem', heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external,
      arrayBuffers: m.arrayBuffers, heapLimit: limit, floors: takeFloors(),
    });
  }, intervalMs);
  reporter.unref();
  send({ t: 'hello', pid: process.pid, node: process.version, heapLimit: limit });

  // ---- draining -----------------------------------------------------------
  let draining = false;
  process.on('SIGTERM', () => {
    if (draining) return;
    draining = true;
    send({ t: 'draining', connections: connections.size });
    if (shared === null || !shared.listening) return finish();
    // net.Server's close, not http.Server's: http's also closes idle
    // keep-alive connections at once, racing a client that is sending a
    // request on one of them right now (a reset, a lost request).
    net.Server.prototype.close.call(shared, () => finish());
    for (const st of connections.values()) {
      if (st.res && !st.res.headersSent) st.res.setHeader('Connection', 'close');
    }
    // A keep-alive connection idle for a while gets no request in flight
    // from its client: close it. Busy ones close after their response.
    const sweeper = setInterval(() => {
      const now = Date.now();
      for (const [socket, st] of connections) {
        if (st.busy === 0 && now - st.idleSince >= idleCloseMs) socket.end();
      }
    }, 50);
    shared.once('close', () => clearInterval(sweeper));
  });

  function finish() {
    if (snapshotPath !== null) {
      send({ t: 'snapshot-start', path: snapshotPath });
      const t0 = Date.now();
      try {
        v8.writeHeapSnapshot(snapshotPath);
        send({ t: 'snapshot', ok: true, path: snapshotPath, ms: Date.now() - t0 });
      } catch (e) {
        send({ t: 'snapshot', ok: false, path: snapshotPath, error: String((e && e.message) || e) });
      }
    }
    // The app's own SIGTERM handlers, if any, decide when it exits
    // (leakhound kills it when the grace period ends).
    if (process.listenerCount('SIGTERM') > 1) {
      send({ t: 'drained', exiting: false });
      return;
    }
    const exit = () => process.exit(0);
    control.write(JSON.stringify({ t: 'drained', exiting: true }) + '\n', exit);
    setTimeout(exit, 500).unref();
  }
})();
