'use strict';
// The JS API: each function runs the binary with --json and resolves to the
// document docs/json.md describes (types in index.d.ts). The analysis runs in
// a child process on purpose: its memory never lands in the heap it measures.

const { spawn } = require('child_process');
const { findBinary, BinaryNotFoundError } = require('./binary.js');

class LeakhoundError extends Error {
  constructor(message, { exitCode, signal, stderr, args }) {
    super(message);
    this.name = 'LeakhoundError';
    this.exitCode = exitCode;
    this.signal = signal;
    this.stderr = stderr;
    this.args = args;
  }
}

// The app's own output goes to stderr with --json; keep only its tail so a
// chatty app cannot grow our memory without bound.
const STDERR_KEEP = 64 * 1024;

/** `64000`, `'64kB'` -> '64000' / '64kB' (the binary parses the units). */
function size(v) {
  return typeof v === 'number' ? String(Math.round(v)) : String(v);
}
/** Milliseconds or a string like '5s' -> a duration the binary reads. */
function duration(v) {
  return typeof v === 'number' ? `${v}ms` : String(v);
}

function execJson(args, opts = {}) {
  return new Promise((resolve, reject) => {
    let binary;
    try {
      binary = findBinary();
    } catch (err) {
      reject(err);
      return;
    }
    const full = [...args, '--json', ...(opts.args || [])];
    const child = spawn(binary, full, {
      cwd: opts.cwd,
      env: opts.env ? { ...process.env, ...opts.env } : process.env,
      stdio: ['ignore', 'pipe', opts.stderr === 'inherit' ? 'inherit' : 'pipe'],
      signal: opts.signal,
      // SIGINT lets the binary stop the app it started and clean up.
      killSignal: 'SIGINT',
    });
    const out = [];
    let err = '';
    child.stdout.on('data', (b) => out.push(b));
    if (child.stderr) {
      child.stderr.setEncoding('utf8');
      child.stderr.on('data', (s) => {
        err += s;
        if (err.length > 2 * STDERR_KEEP) err = err.slice(-STDERR_KEEP);
      });
    }
    child.on('error', (e) => {
      reject(e.name === 'AbortError' ? e : new LeakhoundError(`leakhound: cannot start ${binary}: ${e.message}`, { args: full, stderr: err }));
    });
    child.on('close', (exitCode, signal) => {
      const stdout = Buffer.concat(out).toString('utf8');
      if (exitCode === 0 || (exitCode === 1 && stdout.trim().startsWith('{'))) {
        try {
          resolve(JSON.parse(stdout));
          return;
        } catch (e) {
          reject(new LeakhoundError(`leakhound ${args[0]}: output is not JSON (${e.message})`, { exitCode, signal, stderr: err, args: full }));
          return;
        }
      }
      // The binary's error is one line naming what and where: the last line of stderr.
      const last = err.trim().split('\n').filter(Boolean).pop();
      const why = last || (signal ? `killed by ${signal}` : `exit status ${exitCode}`);
      reject(new LeakhoundError(why.startsWith('leakhound') ? why : `leakhound ${args[0]}: ${why}`, { exitCode, signal, stderr: err, args: full }));
    });
  });
}

/** The target of a live command: one of pid, inspect, command. */
function targetArgs(o, name) {
  const given = ['pid', 'inspect', 'command'].filter((k) => o[k] !== undefined && o[k] !== null);
  if (given.length !== 1) {
    throw new TypeError(`leakhound.${name}: give exactly one of pid, inspect or command (got ${given.join(', ') || 'none'})`);
  }
  if (o.pid !== undefined) return ['--pid', String(o.pid), ...(o.port ? ['--port', String(o.port)] : [])];
  if (o.inspect !== undefined) return ['--inspect', String(o.inspect)];
  return ['--', ...commandList(o.command, name)];
}

function commandList(cmd, name) {
  if (!Array.isArray(cmd) || cmd.length === 0 || !cmd.every((s) => typeof s === 'string')) {
    throw new TypeError(`leakhound.${name}: command must be a non-empty array of strings, e.g. ['node', 'app.js']`);
  }
  return cmd;
}

function opt(list, flag, value, fmt = String) {
  if (value !== undefined && value !== null && value !== false) list.push(flag, fmt(value));
}
function flag(list, name, on) {
  if (on) list.push(name);
}

/** `leakhound run --json -- CMD`: start the app, load it, snapshot, diagnose. */
async function run(options) {
  const o = options || {};
  const a = ['run'];
  for (const url of [].concat(o.load || [])) a.push('--load', url);
  opt(a, '--load-cmd', o.loadCmd);
  opt(a, '-c', o.connections);
  opt(a, '-m', o.method);
  for (const h of [].concat(o.headers || [])) a.push('-H', h);
  opt(a, '-b', o.body);
  opt(a, '-n', o.requests);
  opt(a, '--round-duration', o.roundDuration, duration);
  opt(a, '--warmup', o.warmup);
  opt(a, '--snapshots', o.snapshots);
  opt(a, '--interval', o.interval, duration);
  opt(a, '--gc-every', o.gcEvery, duration);
  opt(a, '--ready-timeout', o.readyTimeout, duration);
  opt(a, '--min-growth', o.minGrowth, size);
  opt(a, '--max-growth', o.maxGrowth, size);
  opt(a, '--keep', o.keep);
  opt(a, '--html', o.html);
  opt(a, '--source-root', o.sourceRoot);
  opt(a, '--libraries', o.libraries);
  const cmd = commandList(o.command, 'run');
  return execJson(a, { ...o, args: [...(o.args || []), '--', ...cmd] });
}

/** `leakhound diagnose --json S1 S2 S3...`: what grows between snapshots and why. */
async function diagnose(files, options) {
  const o = options || {};
  if (!Array.isArray(files) || files.length < 3) {
    throw new TypeError('leakhound.diagnose: give three or more snapshot files, oldest first');
  }
  const a = ['diagnose', ...files.map(String)];
  opt(a, '--min-growth', o.minGrowth, size);
  opt(a, '--top', o.top);
  opt(a, '--threads', o.threads);
  opt(a, '--html', o.html);
  opt(a, '--source-root', o.sourceRoot);
  opt(a, '--libraries', o.libraries);
  flag(a, '--exact', o.exact);
  return execJson(a, o);
}

/** `leakhound snapshot --json -o FILE`: a heap snapshot of a live process. */
async function snapshot(options) {
  const o = options || {};
  if (!o.output) throw new TypeError('leakhound.snapshot: output (the file to write) is required');
  const a = ['snapshot', '-o', String(o.output)];
  flag(a, '--gc', o.gc);
  opt(a, '--delay', o.delay, duration);
  return execJson(a, { ...o, args: [...(o.args || []), ...targetArgs(o, 'snapshot')] });
}

/** `leakhound watch --json`: follow the heap floor of a live process. */
async function watch(options) {
  const o = options || {};
  const a = ['watch'];
  opt(a, '--interval', o.interval, duration);
  opt(a, '--duration', o.duration, duration);
  flag(a, '--force-gc', o.forceGc);
  opt(a, '--min-growth', o.minGrowth);
  opt(a, '--html', o.html);
  return execJson(a, { ...o, args: [...(o.args || []), ...targetArgs(o, 'watch')] });
}

module.exports = { run, diagnose, snapshot, watch, findBinary, LeakhoundError, BinaryNotFoundError };
