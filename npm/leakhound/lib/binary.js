'use strict';
// Finds the leakhound binary: LEAKHOUND_BINARY, else the platform package
// npm picked through optionalDependencies (os/cpu/libc fields). No download,
// no install script: when the package is missing we say why and how to fix it.

const fs = require('fs');

const SCOPE = '@leakhound';

/** 'glibc', 'musl' or null (not Linux / unknown). */
function libcFamily() {
  if (process.platform !== 'linux') return null;
  // process.report is in-process and cheap; a glibc Node reports its glibc version.
  try {
    const report = process.report && process.report.getReport();
    const header = report && (typeof report === 'string' ? JSON.parse(report).header : report.header);
    if (header && header.glibcVersionRuntime) return 'glibc';
    const shared = (report && report.sharedObjects) || [];
    if (shared.some((s) => /ld-musl-|libc\.musl-/.test(s))) return 'musl';
  } catch (_) {
    // fall through to ldd
  }
  try {
    const ldd = fs.readFileSync('/usr/bin/ldd', 'latin1');
    if (ldd.includes('musl')) return 'musl';
    if (ldd.includes('GLIBC') || ldd.includes('GNU C Library')) return 'glibc';
  } catch (_) {
    // no ldd
  }
  return null;
}

/** The platform packages that fit this machine, best first. */
function candidates() {
  const { platform, arch } = process;
  if (platform === 'linux') {
    const libc = libcFamily();
    // The musl build is fully static, so it also runs on glibc; the gnu one needs glibc.
    if (libc === 'musl') return [`linux-${arch}-musl`];
    return [`linux-${arch}-gnu`, `linux-${arch}-musl`];
  }
  return [`${platform}-${arch}`];
}

function exeName() {
  return process.platform === 'win32' ? 'leakhound.exe' : 'leakhound';
}

class BinaryNotFoundError extends Error {
  constructor(message) {
    super(message);
    this.name = 'BinaryNotFoundError';
    this.code = 'LEAKHOUND_BINARY_NOT_FOUND';
  }
}

function tryResolve(spec) {
  try {
    return require.resolve(spec);
  } catch (_) {
    return null;
  }
}

/** Path of the binary, or a BinaryNotFoundError that says what to do. */
function findBinary() {
  const override = process.env.LEAKHOUND_BINARY;
  if (override) {
    if (!fs.existsSync(override)) {
      throw new BinaryNotFoundError(`leakhound: LEAKHOUND_BINARY is set to ${override}, which does not exist`);
    }
    return override;
  }
  const wanted = candidates();
  for (const key of wanted) {
    const found = tryResolve(`${SCOPE}/${key}/bin/${exeName()}`);
    if (found) return found;
  }
  throw new BinaryNotFoundError(missingMessage(wanted));
}

function missingMessage(wanted) {
  const version = require('../package.json').version;
  const libc = libcFamily();
  const here = `${process.platform} ${process.arch}${libc ? ` (${libc})` : ''}`;
  const lines = [`leakhound: no binary for ${here}: the package ${SCOPE}/${wanted[0]} is not installed.`];
  // Another platform's package next to us: node_modules copied between machines
  // (Docker from a Mac, WSL), or a lockfile written elsewhere.
  const others = Object.keys(require('../package.json').optionalDependencies || {})
    .filter((name) => !wanted.includes(name.slice(SCOPE.length + 1)))
    .filter((name) => tryResolve(`${name}/package.json`));
  if (others.length > 0) {
    lines.push(
      `Found ${others.join(', ')} instead: node_modules was installed on another platform${
        libc ? ' or libc' : ''
      } (copied from another machine or image?). Run npm install on this machine.`
    );
  } else {
    lines.push(
      'npm skipped it: optional dependencies were omitted (--omit=optional, --no-optional),',
      'or package-lock.json was written without it (npm/cli#4828).',
      `Fix: npm install --save-dev ${SCOPE}/${wanted[0]}@${version}, or delete node_modules and package-lock.json and run npm install.`
    );
  }
  lines.push('Or point LEAKHOUND_BINARY at a leakhound binary (e.g. one built with cargo).');
  return lines.join('\n');
}

module.exports = { findBinary, libcFamily, candidates, BinaryNotFoundError, SCOPE };
