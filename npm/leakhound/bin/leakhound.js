#!/usr/bin/env node
'use strict';
// The `leakhound` command: runs the platform binary with our arguments and
// stdio, and ends the way it ended (its exit code, or its signal), so CI
// gates (`--fail-on-leak` exits 1) and Ctrl-C behave as with the binary.

const { spawn } = require('child_process');
const { findBinary } = require('../lib/binary.js');

let binary;
try {
  binary = findBinary();
} catch (err) {
  process.stderr.write(`${err.message}\n`);
  process.exit(2);
}

const child = spawn(binary, process.argv.slice(2), { stdio: 'inherit' });
// Ctrl-C reaches the whole process group, the binary included: it stops the app
// it started and exits; we wait for it. SIGTERM to us alone is passed on.
const relay = (signal) => () => {
  if (signal !== 'SIGINT') child.kill(signal);
};
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, relay(signal));
child.on('error', (err) => {
  process.stderr.write(`leakhound: cannot start ${binary}: ${err.message}\n`);
  process.exit(2);
});
child.on('exit', (code, signal) => {
  if (signal) {
    process.removeAllListeners(signal);
    process.kill(process.pid, signal);
    return;
  }
  process.exit(code === null ? 2 : code);
});
