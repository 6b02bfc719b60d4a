'use strict';
// leakhound/test: leak checks to write as tests (node:test, Jest, Vitest, ...).
//
// expectNoLeak snapshots this very process through an in-process inspector
// session and hands the files to the leakhound binary: the analysis runs in a
// child process, so none of its data lands in the heap being measured.

const assert = require('assert');
const asyncHooks = require('async_hooks');
const childProcess = require('child_process');
const events = require('events');
const fs = require('fs');
const os = require('os');
const path = require('path');
// The real timers, captured at load: a runner's fake timers (jest.useFakeTimers,
// vi.useFakeTimers) replace the globals and would never fire our waits.
const realTimers = require('timers');
const { findBinary } = require('../lib/binary.js');

const { AssertionError } = assert;

// ------------------------------------------------------------ inspector

function loadInspector() {
  try {
    return require('inspector');
  } catch (err) {
    throw new Error(
      `leakhound/test: this Node has no inspector (${err.message}); expectNoLeak and expectListenersRestored need one (a standard Node build has it)`
    );
  }
}

function openSession() {
  const inspector = loadInspector();
  const session = new inspector.Session();
  session.connect();
  const post = (method, params) =>
    new Promise((resolve, reject) => session.post(method, params || {}, (err, res) => (err ? reject(err) : resolve(res))));
  const close = async () => {
    // Disconnecting inside a protocol callback can hang the process: leave it first.
    await tick();
    session.disconnect();
  };
  return { session, post, close };
}

function tick() {
  return new Promise((resolve) => realTimers.setImmediate(resolve));
}

function sleep(ms) {
  return new Promise((resolve) => realTimers.setTimeout(resolve, ms));
}

/** Streams a heap snapshot of this isolate into `file` (created 0600, never overwritten). */
async function writeSnapshot(ins, file) {
  const fd = fs.openSync(file, 'wx', 0o600);
  const onChunk = (m) => fs.writeSync(fd, m.params.chunk);
  ins.session.on('HeapProfiler.addHeapSnapshotChunk', onChunk);
  try {
    await ins.post('HeapProfiler.takeHeapSnapshot', { reportProgress: false });
  } finally {
    ins.session.removeListener('HeapProfiler.addHeapSnapshotChunk', onChunk);
    fs.closeSync(fd);
  }
}

// ------------------------------------------------------------ runner detection

/**
 * Where the runner makes in-process snapshots meaningless, say so and what to
 * configure, instead of reporting the runner's own retention as the user's leak.
 */
function unreliableReason() {
  const worker = globalThis.__vitest_worker__;
  const pool = worker && ((worker.ctx && worker.ctx.pool) || (worker.config && worker.config.pool));
  if (typeof pool === 'string' && pool.startsWith('vm')) {
    return (
      `Vitest's ${pool} pool runs every test file in a vm context that stays alive until the worker is recycled, ` +
      "so snapshots grow whatever the code does. Run leak tests with pool: 'forks' or 'threads' " +
      "(e.g. a separate project in vitest.config: { test: { pool: 'forks', include: ['**/*.leak.test.*'] } })."
    );
  }
  return null;
}

// ------------------------------------------------------------ sizes

function parseSize(v, name) {
  if (typeof v === 'number' && Number.isFinite(v) && v >= 0) return v;
  const m = /^\s*([0-9]+(?:\.[0-9]+)?)\s*(B|kB|KB|k|MB|M|GB|G|KiB|MiB|GiB)?\s*$/.exec(String(v));
  if (!m) throw new TypeError(`leakhound/test: ${name} must be bytes or a size like '64kB', '1MB' (got ${JSON.stringify(v)})`);
  const mult = { B: 1, kB: 1e3, KB: 1e3, k: 1e3, MB: 1e6, M: 1e6, GB: 1e9, G: 1e9, KiB: 1024, MiB: 1048576, GiB: 1073741824 }[m[2] || 'B'];
  return Math.round(parseFloat(m[1]) * mult);
}

/** kB/MB are powers of 1000, as everywhere in leakhound. */
function fmtBytes(n) {
  const a = Math.abs(n);
  const sign = n < 0 ? '-' : '';
  if (a >= 1e9) return `${sign}${(a / 1e9).toFixed(1)} GB`;
  if (a >= 1e6) return `${sign}${(a / 1e6).toFixed(1)} MB`;
  if (a >= 1e3) return `${sign}${(a / 1e3).toFixed(1)} kB`;
  return `${sign}${a} B`;
}

function signed(n, f = String) {
  return `${n >= 0 ? '+' : ''}${f(n)}`;
}

// ------------------------------------------------------------ expectNoLeak

const NO_LEAK_DEFAULTS = { iterations: 100, rounds: 3, minGrowth: '4kB' };

function runDiagnose(files, minGrowth) {
  return new Promise((resolve, reject) => {
    const args = ['diagnose', '--json', '--min-growth', String(minGrowth), ...files];
    childProcess.execFile(findBinary(), args, { maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err && !stdout) {
        const line = String(stderr).trim().split('\n').pop() || err.message;
        reject(new Error(`leakhound/test: leakhound diagnose failed: ${line}`));
        return;
      }
      try {
        resolve(JSON.parse(stdout));
      } catch (e) {
        reject(new Error(`leakhound/test: leakhound diagnose printed no JSON (${e.message}): ${String(stderr).trim()}`));
      }
    });
  });
}

function where(loc) {
  if (!loc || !loc.file) return null;
  const file = loc.file.startsWith('file://') ? safeFileURLToPath(loc.file) : loc.file;
  const rel = path.isAbsolute(file) ? path.relative(process.cwd(), file) : file;
  return `${rel.startsWith('..') ? file : rel}:${loc.line}:${loc.column}`;
}

function safeFileURLToPath(u) {
  try {
    return require('url').fileURLToPath(u);
  } catch (_) {
    return u;
  }
}

// ------------------------------------------------------------ source maps

// Runners run transformed code (babel-jest reprints every file, Vitest
// rewrites imports and strips types), so the snapshot's line:column are the
// transformed code's. Both inline a source map; V8 reports it per script.
const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

/** Source map `mappings` -> per generated line, [genCol, source, line, col] segments (0-based). */
function decodeMappings(mappings) {
  const lines = [];
  let source = 0;
  let line = 0;
  let col = 0;
  for (const text of mappings.split(';')) {
    let genCol = 0;
    const segs = [];
    for (const seg of text.split(',')) {
      if (!seg) continue;
      const vals = [];
      let v = 0;
      let shift = 0;
      for (const ch of seg) {
        const d = B64.indexOf(ch);
        v += (d & 31) << shift;
        if (d & 32) {
          shift += 5;
        } else {
          vals.push(v & 1 ? -(v >>> 1) : v >>> 1);
          v = 0;
          shift = 0;
        }
      }
      genCol += vals[0];
      if (vals.length >= 4) {
        source += vals[1];
        line += vals[2];
        col += vals[3];
        segs.push([genCol, source, line, col]);
      }
    }
    lines.push(segs);
  }
  return lines;
}

function parseDataUrl(u) {
  const comma = u.indexOf(',');
  if (!u.startsWith('data:') || comma < 0) return null;
  const meta = u.slice(5, comma);
  const body = u.slice(comma + 1);
  const text = meta.endsWith(';base64') ? Buffer.from(body, 'base64').toString('utf8') : decodeURIComponent(body);
  return JSON.parse(text);
}

const decodedMaps = new Map(); // sourceMapURL -> { map, lines } or null

/**
 * The original position of a 1-based line:column of a script
 * ({ url, sourceMapURL } from Debugger.scriptParsed), or null without an inline map.
 */
function originalPosition(script, line, column) {
  if (!script || !script.sourceMapURL || !script.sourceMapURL.startsWith('data:')) return null;
  let m = decodedMaps.get(script.sourceMapURL);
  if (m === undefined) {
    try {
      const map = parseDataUrl(script.sourceMapURL);
      m = { map, lines: decodeMappings(map.mappings) };
    } catch (_) {
      m = null;
    }
    decodedMaps.set(script.sourceMapURL, m);
  }
  if (!m) return null;
  const segs = m.lines[line - 1];
  if (!segs || segs.length === 0) return null;
  let hit = segs[0];
  for (const seg of segs) if (seg[0] <= column - 1) hit = seg;
  const src = m.map.sources && m.map.sources[hit[1]];
  const base = (f) => String(f).split(/[\\/]/).pop();
  let file = script.url;
  // Keep the script's own path when the map names the same file (babel-jest, Vite do).
  if (src && (!file || base(src) !== base(file))) {
    file = src.startsWith('/') || src.includes('://') ? src : path.join(path.dirname(safeFileURLToPath(file || '')), src);
  }
  return { file, line: hit[2] + 1, column: hit[3] + 1 };
}

/** scriptId -> { url, sourceMapURL } of every script V8 has (Debugger.enable replays them). */
async function scriptTable(ins) {
  const scripts = new Map();
  const onScript = (m) => scripts.set(m.params.scriptId, { url: m.params.url, sourceMapURL: m.params.sourceMapURL });
  ins.session.on('Debugger.scriptParsed', onScript);
  try {
    await ins.post('Debugger.enable');
    await ins.post('Debugger.disable');
  } finally {
    ins.session.removeListener('Debugger.scriptParsed', onScript);
  }
  return scripts;
}

/** Rewrites the suspects' locations (and the advice naming them) to the original sources. */
async function applySourceMaps(diagnosis) {
  const locs = [];
  for (const s of diagnosis.suspects) {
    if (s.location && s.location.script_id !== undefined) locs.push([s, s.location]);
    for (const step of s.retainer_path) if (step.location) locs.push([null, step.location]);
  }
  if (locs.length === 0) return;
  let scripts;
  try {
    const ins = openSession();
    try {
      scripts = await scriptTable(ins);
    } finally {
      await ins.close();
    }
  } catch (_) {
    return; // no inspector or Debugger domain: the transformed lines stay
  }
  for (const [suspect, loc] of locs) {
    const orig = originalPosition(scripts.get(String(loc.script_id)), loc.line, loc.column);
    if (!orig) continue;
    const before = `${loc.file}:${loc.line}:${loc.column}`;
    loc.generated = { line: loc.line, column: loc.column };
    Object.assign(loc, orig);
    if (suspect) suspect.advice = suspect.advice.split(before).join(`${loc.file}:${loc.line}:${loc.column}`);
  }
}

/** A suspect as `leakhound diagnose` prints it: pattern, accumulator, path, the user's line, the fix. */
function describeSuspect(s, i) {
  const objects = s.objects_per_step.map((n) => signed(n)).join(', ');
  const bytes = s.bytes_per_step.map((n) => signed(n, fmtBytes)).join(', ');
  const leaked = s.classes
    .slice(0, 3)
    .map((c) => `${c.count} ${c.class}`)
    .join(', ');
  return [
    `  ${i + 1}. ${s.title} [${s.pattern}]: ${s.accumulator.name}`,
    `     grows:  ${objects} objects per round (${bytes}); leaked: ${leaked}`,
    `     path:   ${s.path_text}`,
    `     source: ${where(s.location) || '(no code of yours on the path)'}`,
    `     fix:    ${s.advice}`,
  ].join('\n');
}

function leakMessage(d, o) {
  const n = d.suspects.length;
  const head =
    `leakhound: the function leaks: ${n} suspect${n === 1 ? '' : 's'} grew in every one of ${o.rounds} rounds of ` +
    `${o.iterations} calls (threshold ${fmtBytes(d.min_growth_bytes_per_step)} per round)`;
  return [head, ...d.suspects.map(describeSuspect)].join('\n');
}

/**
 * Calls `fn` repeatedly and fails when what it leaves behind grows in every round.
 * Resolves to a report; rejects with an AssertionError naming the leak.
 */
async function expectNoLeak(fn, options) {
  if (typeof fn !== 'function') throw new TypeError('expectNoLeak(fn, options): fn must be a function (one iteration of the code under test)');
  const o = { ...NO_LEAK_DEFAULTS, ...(options || {}) };
  if (!(Number.isInteger(o.iterations) && o.iterations > 0)) throw new TypeError('leakhound/test: iterations must be a positive integer');
  if (!(Number.isInteger(o.rounds) && o.rounds >= 2)) throw new TypeError('leakhound/test: rounds must be an integer >= 2 (three snapshots at least)');
  const warmup = o.warmup === undefined ? o.iterations : o.warmup;
  const minGrowth = parseSize(o.minGrowth, 'minGrowth');
  const maxGrowth = o.maxGrowth === undefined || o.maxGrowth === null ? null : parseSize(o.maxGrowth, 'maxGrowth');
  const reason = unreliableReason();
  if (reason) throw new Error(`leakhound/test: in-process snapshots are unreliable here. ${reason}`);
  findBinary(); // fail before the work if the binary is missing

  const started = Date.now();
  let dir;
  if (o.keep) {
    dir = typeof o.keep === 'string' ? path.resolve(o.keep) : fs.mkdtempSync(path.join(os.tmpdir(), 'leakhound-test-'));
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  } else {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'leakhound-test-')); // 0700
  }
  const files = [];
  const floors = [];
  let diagnosis;
  try {
    const ins = openSession();
    try {
      await ins.post('HeapProfiler.enable');
      for (let i = 0; i < warmup; i++) await fn(i);
      const stamp = `${process.pid}-${Date.now()}`;
      const snap = async (k) => {
        await ins.post('HeapProfiler.collectGarbage');
        floors.push(process.memoryUsage().heapUsed);
        const file = path.join(dir, `${stamp}-s${k + 1}.heapsnapshot`);
        await writeSnapshot(ins, file);
        files.push(file);
      };
      await snap(0);
      for (let r = 1; r <= o.rounds; r++) {
        for (let i = 0; i < o.iterations; i++) await fn(i);
        await snap(r);
      }
      await ins.post('HeapProfiler.disable');
    } finally {
      await ins.close();
    }
    diagnosis = await runDiagnose(files, minGrowth);
  } finally {
    // Whatever happened (fn threw, the binary failed), no heap contents stay behind unasked.
    if (!o.keep) fs.rmSync(dir, { recursive: true, force: true });
  }
  const heapGrowth = floors[floors.length - 1] - floors[0];
  const report = {
    verdict: diagnosis.verdict,
    diagnosis,
    floors,
    heapGrowth,
    seconds: (Date.now() - started) / 1000,
    snapshots: o.keep ? files : [],
  };
  if (diagnosis.verdict === 'leak') {
    await applySourceMaps(diagnosis);
    const err = new AssertionError({ message: leakMessage(diagnosis, o) + keptNote(o, dir) });
    err.leakhound = report;
    throw err;
  }
  if (maxGrowth !== null && heapGrowth > maxGrowth) {
    report.verdict = 'leak';
    const err = new AssertionError({
      message:
        `leakhound: the heap after GC grew ${fmtBytes(heapGrowth)} over ${o.rounds} rounds of ${o.iterations} calls, ` +
        `more than maxGrowth ${fmtBytes(maxGrowth)} (${floors.map(fmtBytes).join(' -> ')}); ` +
        `no single object group grew in every round by ${fmtBytes(minGrowth)}` +
        keptNote(o, dir),
    });
    err.leakhound = report;
    throw err;
  }
  return report;
}

function keptNote(o, dir) {
  return o.keep ? `\n  snapshots kept in ${dir} (open them in DevTools > Memory, or: leakhound diagnose ${dir}/*.heapsnapshot)` : '';
}

// ------------------------------------------------------------ listeners

const GROUP = 'leakhound-test';
const CHANNEL = Symbol.for('leakhound.test.channel');

/** Evaluates in the main context with Node's console API (`require`), returns a remote object id. */
async function remote(ins, expression) {
  const r = await ins.post('Runtime.evaluate', { expression, includeCommandLineAPI: true, objectGroup: GROUP, silent: true });
  if (r.exceptionDetails || !r.result.objectId) {
    throw new Error(`leakhound/test: the inspector could not evaluate ${expression}: ${r.exceptionDetails ? r.exceptionDetails.text : 'no object'}`);
  }
  return r.result.objectId;
}

/**
 * Every EventEmitter alive in this isolate (Runtime.queryObjects on
 * EventEmitter.prototype), handed back through the shared `events` module: it
 * is the same object in a runner's sandbox and in the inspector's context.
 */
async function allEmitters(ins) {
  const protoId = await remote(ins, "require('events').prototype");
  const { objects } = await ins.post('Runtime.queryObjects', { prototypeObjectId: protoId, objectGroup: GROUP });
  await ins.post('Runtime.callFunctionOn', {
    objectId: protoId,
    functionDeclaration: `function (list) { Object.defineProperty(this.constructor, Symbol.for(${JSON.stringify(CHANNEL.description)}), { value: list, configurable: true }); }`,
    arguments: [{ objectId: objects.objectId }],
    objectGroup: GROUP,
  });
  const list = events.EventEmitter[CHANNEL] || [];
  delete events.EventEmitter[CHANNEL];
  await ins.post('Runtime.releaseObjectGroup', { objectGroup: GROUP });
  // Prototypes (Server.prototype, ...) match too; only instances with their own _events count.
  return list.filter((o) => o && !Object.prototype.hasOwnProperty.call(o, 'constructor') && o._events && typeof o._events === 'object');
}

/** emitter -> Map(event -> raw listeners) */
function listenerCensus(emitters, skip) {
  const census = new Map();
  for (const e of emitters) {
    if (skip.has(e)) continue;
    const byEvent = new Map();
    for (const name of Reflect.ownKeys(e._events)) {
      const l = e._events[name];
      const list = typeof l === 'function' ? [l] : Array.isArray(l) ? l.slice() : [];
      if (list.length) byEvent.set(name, list);
    }
    census.set(e, byEvent);
  }
  return census;
}

/** Where each function is defined, file:line:column (1-based, through source maps), via [[FunctionLocation]]. */
async function functionLocations(ins, fns) {
  const out = new Map();
  const scripts = await scriptTable(ins);
  for (const f of fns) {
    events.EventEmitter[CHANNEL] = f;
    try {
      const id = await remote(ins, `require('events')[Symbol.for(${JSON.stringify(CHANNEL.description)})]`);
      const { internalProperties } = await ins.post('Runtime.getProperties', { objectId: id, ownProperties: true });
      const loc = (internalProperties || []).find((p) => p.name === '[[FunctionLocation]]');
      if (loc) {
        const { scriptId, lineNumber, columnNumber } = loc.value.value;
        const script = scripts.get(scriptId);
        const at = { file: (script && script.url) || `script ${scriptId}`, line: lineNumber + 1, column: columnNumber + 1 };
        out.set(f, where(originalPosition(script, at.line, at.column) || at));
      }
    } finally {
      delete events.EventEmitter[CHANNEL];
    }
  }
  await ins.post('Runtime.releaseObjectGroup', { objectGroup: GROUP });
  return out;
}

function emitterName(e) {
  if (e === process) return 'process';
  const cls = (e.constructor && e.constructor.name) || 'EventEmitter';
  try {
    if (typeof e.address === 'function' && e.listening) {
      const a = e.address();
      if (a && typeof a === 'object') return `${cls} ${a.address}:${a.port}`;
    }
    if (e.remoteAddress && e.remotePort) return `${cls} ${e.localAddress}:${e.localPort} -> ${e.remoteAddress}:${e.remotePort}`;
    if (typeof e.path === 'string') return `${cls} ${e.path}`;
  } catch (_) {
    // a getter that throws: the class name will do
  }
  return cls;
}

function eventName(name) {
  return typeof name === 'symbol' ? name.toString() : JSON.stringify(name);
}

async function runWithTeardown(fn) {
  const teardown = await fn();
  if (typeof teardown === 'function') await teardown();
  // Let close callbacks and pending removals run.
  for (let i = 0; i < 3; i++) await tick();
}

/** The in-process session answers synchronously; a sync call keeps no frame holding what it touched. */
function postSync(session, method, params) {
  let result;
  let error;
  let done = false;
  session.post(method, params || {}, (err, res) => {
    error = err;
    result = res;
    done = true;
  });
  if (!done) throw new Error(`leakhound/test: the inspector did not answer ${method} synchronously`);
  if (error) throw error;
  return result;
}

/**
 * Compares the census with now, synchronously (no frame of ours keeps an
 * emitter afterwards): plain data, the listener functions to locate, and a
 * weak reference to each emitter, to name it from a snapshot.
 */
function compareListeners(before, skip, session) {
  const problems = [];
  const fns = [];
  for (const [e, events0] of before) {
    const now = listenerCensus([e], skip).get(e);
    const names = new Set([...events0.keys(), ...now.keys()]);
    // Weak: the snapshot that names it must not find it through us.
    const ref = new WeakRef(e);
    for (const name of names) {
      const was = events0.get(name) || [];
      const is = now.get(name) || [];
      if (is.length === was.length) continue;
      const added = is.filter((l) => !was.includes(l)).map((l) => l.listener || l);
      const removed = was.filter((l) => !is.includes(l)).map((l) => l.listener || l);
      problems.push({ emitter: emitterName(e), ref, heapId: null, event: eventName(name), before: was.length, after: is.length, added: added.length, removed: removed.length, addedAt: [], removedAt: [] });
      fns.push([problems.length - 1, added, removed]);
    }
  }
  return { problems, fns };
}

/**
 * What the code calls each emitter: the shortest retainer path to it in a
 * fresh snapshot, taken while we hold the emitters only weakly (weak edges
 * are no retainer paths). Their ids are read after it: V8 gives an object
 * an id when a snapshot first sees it.
 */
async function emitterPaths(ins, problems) {
  const paths = new Map();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'leakhound-test-')); // 0700
  try {
    const file = path.join(dir, 'listeners.heapsnapshot');
    await ins.post('HeapProfiler.enable');
    await writeSnapshot(ins, file);
    for (const p of problems.slice(0, 5)) {
      const e = p.ref.deref();
      if (!e) continue;
      events.EventEmitter[CHANNEL] = e;
      try {
        const r = postSync(ins.session, 'Runtime.evaluate', {
          expression: `require('events')[Symbol.for(${JSON.stringify(CHANNEL.description)})]`,
          includeCommandLineAPI: true,
          objectGroup: GROUP,
          silent: true,
        });
        p.heapId = postSync(ins.session, 'HeapProfiler.getHeapObjectId', { objectId: r.result.objectId }).heapSnapshotObjectId;
      } finally {
        delete events.EventEmitter[CHANNEL];
      }
    }
    postSync(ins.session, 'Runtime.releaseObjectGroup', { objectGroup: GROUP });
    for (const id of new Set(problems.map((p) => p.heapId).filter((id) => id && id !== '0'))) {
      const stdout = await new Promise((resolve) => {
        childProcess.execFile(findBinary(), ['retainers', file, '--id', String(id), '--paths', '1', '--json'], { maxBuffer: 16 * 1024 * 1024 }, (err, out) => resolve(err ? null : out));
      });
      const o = stdout && JSON.parse(stdout).objects[0];
      const found = o && o.paths && o.paths[0];
      if (!found || !found.steps || found.steps.length === 0) continue;
      // The name the code uses: trailing property/variable edges (`app.bus`), as diagnose names accumulators.
      const names = [];
      for (let i = found.steps.length - 1; i >= 0; i--) {
        const st = found.steps[i];
        if (st.edge_type !== 'property' && st.edge_type !== 'context') break;
        names.unshift(st.edge);
        if (st.edge_type === 'context' || names.length === 3) break;
      }
      paths.set(id, { name: names.join('.'), path: found.text });
    }
  } catch (_) {
    // naming is a help, not the verdict: the class name stays
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return paths;
}

/**
 * Every EventEmitter's listener counts are back to their baseline after `fn`
 * (and the teardown function it may return). Rejects with an AssertionError
 * naming each emitter, event and where the added listener was defined.
 */
async function expectListenersRestored(fn) {
  if (typeof fn !== 'function') throw new TypeError('expectListenersRestored(fn): fn must be a function (mount and tear down; it may return a teardown function)');
  const ins = openSession();
  try {
    const skip = new Set([ins.session]);
    const before = listenerCensus(await allEmitters(ins), skip);
    await runWithTeardown(fn);
    let { problems, fns } = compareListeners(before, skip, ins.session);
    before.clear();
    if (problems.length === 0) return { emitters: 0, problems: [] };
    const locations = await functionLocations(ins, fns.flatMap(([, a, r]) => [...a, ...r]));
    const show = (f) => `${f.name || '(anonymous)'} ${locations.get(f) || '(location unknown)'}`;
    // Listeners Node or the runner adds and removes on its own (a reporter
    // stream's 'drain' under backpressure) are not the code's: an event whose
    // every changed listener is defined there is left out.
    const theirs = (f) => NOT_USER.test(locations.get(f) || '');
    const noise = new Set();
    for (const [i, added, removed] of fns.splice(0)) {
      problems[i].addedAt = added.slice(0, 3).map(show);
      problems[i].removedAt = removed.slice(0, 3).map(show);
      if ([...added, ...removed].every(theirs)) noise.add(problems[i]);
    }
    locations.clear();
    problems = problems.filter((p) => !noise.has(p));
    if (problems.length === 0) return { emitters: 0, problems: [] };
    const paths = await emitterPaths(ins, problems);
    const lines = problems.map((p) => {
      const held = paths.get(p.heapId);
      const title = held && held.name ? `${held.name} (${p.emitter})` : p.emitter;
      return [
        `  ${title} ${p.event}: ${p.before} listener${p.before === 1 ? '' : 's'} before, ${p.after} after`,
        ...p.addedAt.map((t) => `     added:   ${t}`),
        ...(p.added > 3 ? [`     ... and ${p.added - 3} more added`] : []),
        ...p.removedAt.map((t) => `     removed: ${t}`),
        ...(held ? [`     held by: ${held.path}`] : []),
      ].join('\n');
    });
    const err = new AssertionError({
      message: `leakhound: listeners not restored on ${problems.length} emitter event${problems.length === 1 ? '' : 's'} after the function and its teardown\n${lines.join('\n')}\n  fix: remove each listener in the teardown (emitter.off(event, fn)), or use emitter.once() if it should fire once`,
    });
    err.leakhound = { problems: problems.map(({ ref, ...p }) => ({ ...p, name: (paths.get(p.heapId) || {}).name || null })) };
    throw err;
  } finally {
    await ins.close();
  }
}

// ------------------------------------------------------------ handles

// async_hooks resource types that are handles (they keep the process alive or hold a descriptor).
const HANDLE_TYPES = new Map([
  ['Timeout', 'timer'],
  ['Immediate', 'immediate'],
  ['TCPWRAP', 'socket'],
  ['TLSWRAP', 'socket'],
  ['PIPEWRAP', 'socket'],
  ['UDPWRAP', 'socket'],
  ['TCPSERVERWRAP', 'server'],
  ['PIPESERVERWRAP', 'server'],
  ['FSEVENTWRAP', 'watcher'],
  ['STATWATCHER', 'watcher'],
  ['PROCESSWRAP', 'child process'],
  ['SIGNALWRAP', 'signal handler'],
  ['FILEHANDLE', 'file handle'],
  ['WORKER', 'worker'],
]);

// Frames that are not the user's: Node's internals, this module, the runners.
const NOT_USER = /^node:|^internal\/|(?:^|[\\/])node_modules[\\/](?:leakhound|jest[^\\/]*|@jest|vitest|@vitest|tinypool|birpc|tinyspy|expect|pretty-format)[\\/]|[\\/]leakhound[\\/]test[\\/]index\.js/;

function userFrames(stack) {
  const frames = [];
  for (const line of String(stack).split('\n').slice(1)) {
    const m = /\(?((?:file:\/\/)?[^()\s]+):(\d+):(\d+)\)?\s*$/.exec(line.trim());
    if (!m) continue;
    const file = m[1].startsWith('file://') ? safeFileURLToPath(m[1]) : m[1];
    if (NOT_USER.test(file) || NOT_USER.test(m[1])) continue;
    const fn = /^at (?:async )?([^\s(]+) \(/.exec(line.trim());
    frames.push({ where: where({ file, line: +m[2], column: +m[3] }), fn: fn ? fn[1] : null });
  }
  return frames;
}

function ownerOf(resource) {
  for (const s of Object.getOwnPropertySymbols(resource)) {
    if (s.description === 'owner_symbol') return resource[s];
  }
  return resource.owner || null;
}

/** The callback a handle will call: a timer's function, a server's request listener, ... */
function callbackOf(type, resource) {
  if (type === 'Timeout') return resource._onTimeout;
  if (type === 'Immediate') return resource._onImmediate;
  const owner = ownerOf(resource);
  if (owner && typeof owner.listeners === 'function') {
    for (const ev of ['request', 'connection', 'data', 'change', 'message', 'exit', 'listening', 'close']) {
      const l = owner.listeners(ev);
      if (l.length) return l[0];
    }
  }
  return null;
}

function stillOpen(type, resource) {
  if (!resource) return false;
  if (type === 'Timeout') return !resource._destroyed && resource._idleTimeout !== -1;
  if (type === 'Immediate') return !resource._destroyed;
  return true;
}

/**
 * No timer, socket, server or watcher that `fn` (and the teardown it may
 * return) opened is left open. Rejects naming each with its callback's location.
 */
async function expectHandlesClosed(fn, options) {
  if (typeof fn !== 'function') throw new TypeError('expectHandlesClosed(fn): fn must be a function (it may return a teardown function)');
  const settleMs = (options && options.settle) || 20;
  const opened = new Map(); // asyncId -> { type, ref, stack, trigger }
  // Every other resource's trigger and, if it has them, the user's frames: a
  // handle created in a callback (listen() after its DNS lookup) is then
  // traced back to the user's line that started the chain.
  const origins = new Map(); // asyncId -> { trigger, frames }
  const stackNow = () => {
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 40;
    const stack = new Error().stack;
    Error.stackTraceLimit = limit;
    return stack;
  };
  const hook = asyncHooks.createHook({
    init(asyncId, type, trigger, resource) {
      if (HANDLE_TYPES.has(type)) {
        opened.set(asyncId, { type, ref: new WeakRef(resource), stack: stackNow(), trigger });
      } else if (type === 'PROMISE') {
        origins.set(asyncId, { trigger, frames: null });
      } else {
        const frames = userFrames(stackNow());
        origins.set(asyncId, { trigger, frames: frames.length ? frames : null });
      }
    },
    destroy(asyncId) {
      opened.delete(asyncId);
    },
  });
  hook.enable();
  try {
    await runWithTeardown(fn);
    await sleep(settleMs);
    await tick();
  } finally {
    hook.disable();
  }
  const traced = (start) => {
    for (let id = start, hops = 0; id && hops < 100; hops++) {
      const o = origins.get(id) || opened.get(id);
      if (!o) return [];
      const frames = o.frames || (o.stack ? userFrames(o.stack) : null);
      if (frames && frames.length) return frames;
      id = o.trigger;
    }
    return [];
  };
  const left = [];
  for (const { type, ref, stack, trigger } of opened.values()) {
    const resource = ref.deref();
    if (!stillOpen(type, resource)) continue;
    let frames = userFrames(stack);
    if (frames.length === 0) frames = traced(trigger);
    if (frames.length === 0) continue; // opened by the runner or Node itself, not by fn
    left.push({ type, kind: HANDLE_TYPES.get(type), resource, frames });
  }
  origins.clear();
  opened.clear();
  if (left.length === 0) return { open: [] };
  const cbs = left.map((h) => callbackOf(h.type, h.resource)).filter((f) => typeof f === 'function');
  let locations = new Map();
  try {
    const ins = openSession();
    try {
      locations = await functionLocations(ins, cbs);
    } finally {
      await ins.close();
    }
  } catch (_) {
    // no inspector: the opening line still names each handle
  }
  const described = left.map((h) => {
    const cb = callbackOf(h.type, h.resource);
    const cbText = cb ? `${cb.name || '(anonymous)'} ${locations.get(cb) || ''}`.trim() : null;
    let detail = '';
    if (h.type === 'Timeout') {
      detail = `${h.resource._repeat ? 'setInterval every' : 'setTimeout after'} ${h.resource._idleTimeout} ms${h.resource.hasRef && !h.resource.hasRef() ? " (unref'd)" : ''}`;
    } else {
      const owner = ownerOf(h.resource);
      detail = owner && owner.constructor ? emitterName(owner) : h.type;
    }
    return { kind: h.kind, detail, callback: cbText, openedAt: h.frames[0].where };
  });
  const lines = described.map((d) => `  ${d.kind}: ${d.detail}${d.callback ? `, callback ${d.callback}` : ''}, opened at ${d.openedAt}`);
  const err = new AssertionError({
    message: `leakhound: ${described.length} handle${described.length === 1 ? '' : 's'} opened by the function ${described.length === 1 ? 'is' : 'are'} still open after it and its teardown\n${lines.join('\n')}\n  fix: clearTimeout/clearInterval, server.close(), socket.destroy(), watcher.close() in the teardown, or unref() what may outlive it`,
  });
  err.leakhound = { open: described };
  throw err;
}

module.exports = { expectNoLeak, expectListenersRestored, expectHandlesClosed, describeSuspect, unreliableReason };
