#!/usr/bin/env node
'use strict';
// Writes the npm package folders into target/npm/stage/:
//   stage.js platform KEY BINARY VERSION   -> @leakhound/KEY with bin/leakhound[.exe]
//   stage.js wrapper VERSION               -> leakhound (JS), optionalDependencies = every platform at VERSION
// The platform table is npm/platforms.json: a new target is one entry there
// and one matrix entry in .github/workflows/release.yml.

const fs = require('fs');
const path = require('path');

const npmDir = path.join(__dirname, '..');
const root = path.join(npmDir, '..');
const stage = path.join(root, 'target', 'npm', 'stage');
const platforms = JSON.parse(fs.readFileSync(path.join(npmDir, 'platforms.json'), 'utf8'));
const [kind, ...rest] = process.argv.slice(2);

function copyDir(from, to) {
  fs.mkdirSync(to, { recursive: true });
  for (const e of fs.readdirSync(from, { withFileTypes: true })) {
    const a = path.join(from, e.name);
    const b = path.join(to, e.name);
    if (e.isDirectory()) copyDir(a, b);
    else fs.copyFileSync(a, b);
  }
}

function writeJson(file, value) {
  fs.writeFileSync(file, `${JSON.stringify(value, null, 2)}\n`);
}

if (kind === 'platform') {
  const [key, binary, version] = rest;
  const p = platforms[key];
  if (!p) throw new Error(`unknown platform ${key}; known: ${Object.keys(platforms).join(', ')}`);
  const dir = path.join(stage, key);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(path.join(dir, 'bin'), { recursive: true });
  const exe = path.join(dir, 'bin', p.exe);
  fs.copyFileSync(binary, exe);
  fs.chmodSync(exe, 0o755);
  const pkg = {
    name: `@leakhound/${key}`,
    version,
    description: `The leakhound binary for ${p.os} ${p.cpu}${p.libc ? ` (${p.libc}${p.static ? ', statically linked' : ''})` : ''}; installed by the leakhound package`,
    license: 'MIT',
    repository: 'github:leakhound/leakhound',
    os: [p.os],
    cpu: [p.cpu],
    ...(p.libc ? { libc: [p.libc] } : {}),
    files: ['bin', 'README.md'],
    preferUnplugged: true,
  };
  writeJson(path.join(dir, 'package.json'), pkg);
  const staticNote = p.static
    ? `\nThe binary is fully static (no dynamic loader, no shared libraries): it runs on musl systems such as Alpine, and on any x64 Linux. ${p.rust_target.endsWith('-gnu') ? 'It is built from the gnu target with glibc linked in statically (`-C target-feature=+crt-static`); leakhound only connects to numeric loopback addresses (127.0.0.1), so glibc\'s NSS (which a static glibc cannot load) is never needed.' : 'It is built for the musl target, which links statically by default.'}\n`
    : '';
  fs.writeFileSync(
    path.join(dir, 'README.md'),
    `# ${pkg.name}\n\nThe \`leakhound\` binary for ${p.os} ${p.cpu}${p.libc ? ` ${p.libc}` : ''} (Rust target \`${p.rust_target}\`). Do not install it directly: install \`leakhound\`, which depends on it optionally, and npm picks the package that fits the machine by its \`os\`, \`cpu\` and \`libc\` fields.\n${staticNote}`
  );
  console.log(dir);
} else if (kind === 'wrapper') {
  const [version] = rest;
  const dir = path.join(stage, 'leakhound');
  fs.rmSync(dir, { recursive: true, force: true });
  copyDir(path.join(npmDir, 'leakhound'), dir);
  const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
  pkg.version = version;
  // Experimental targets (win32: leakhound's process control is Unix-only so
  // far) are built by the release workflow but not depended on.
  pkg.optionalDependencies = Object.fromEntries(
    Object.entries(platforms)
      .filter(([, p]) => !p.experimental)
      .map(([k]) => [`@leakhound/${k}`, version])
  );
  writeJson(path.join(dir, 'package.json'), pkg);
  console.log(dir);
} else {
  console.error('usage: stage.js platform KEY BINARY VERSION | stage.js wrapper VERSION');
  process.exit(2);
}
