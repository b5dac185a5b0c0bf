#!/usr/bin/env node
// A stand-in `solc` binary for forge, which cannot download compilers here. It answers the two
// things forge asks of a solc: `--version`, and `--standard-json` (input on stdin, output on
// stdout), by calling the pinned npm `solc` (solcjs, tools/node_modules/solc). Imports that
// forge did not already put into the input are read from the --base-path / --include-path /
// --allow-paths directories given on the command line.
//
//   contracts/foundry.toml:  solc = "../tools/solc-shim.js"
'use strict';

const fs = require('fs');
const path = require('path');

const solc = require(path.join(__dirname, 'node_modules', 'solc'));
const args = process.argv.slice(2);

if (args.includes('--version')) {
  // forge parses the last line: "Version: 0.8.37+commit.f401782d.<platform>".
  process.stdout.write(`solc, the solidity compiler commandline interface\nVersion: ${solc.version()}\n`);
  process.exit(0);
}

if (!args.includes('--standard-json')) {
  process.stderr.write('solc-shim: only --version and --standard-json are supported\n');
  process.exit(2);
}

const roots = [];
for (let i = 0; i < args.length; i += 1) {
  if (['--base-path', '--include-path', '--allow-paths'].includes(args[i]) && args[i + 1]) {
    for (const p of args[i + 1].split(',')) roots.push(path.resolve(p));
    i += 1;
  }
}
if (roots.length === 0) roots.push(process.cwd());

function findImport(unit) {
  for (const root of roots) {
    const file = path.resolve(root, unit);
    if (fs.existsSync(file)) return { contents: fs.readFileSync(file, 'utf8') };
  }
  return { error: `solc-shim: import not found: ${unit}` };
}

const input = fs.readFileSync(0, 'utf8');
process.stdout.write(solc.compile(input, { import: findImport }));
