#!/usr/bin/env node
// Compiles Valet's Solidity contracts with the pinned npm `solc` (solcjs) through its
// standard-JSON interface and writes one committed artifact per contract (abi + bytecode) to
// contracts/artifacts/. Imports resolve from tools/node_modules (e.g. @openzeppelin/contracts).
//
//   node tools/compile-contracts.js           rewrite the artifacts
//   node tools/compile-contracts.js --check   recompile; exit 1 if a committed artifact differs
//
// The Rust crate valet-chain embeds the artifacts, so nothing needs solc at run time.
'use strict';

const fs = require('fs');
const path = require('path');

const TOOLS = __dirname;
const ROOT = path.resolve(TOOLS, '..');
const NODE_MODULES = path.join(TOOLS, 'node_modules');
const SOURCES = path.join(ROOT, 'contracts', 'src');
const ARTIFACTS = path.join(ROOT, 'contracts', 'artifacts');

// Every contract that gets an artifact: source file (under contracts/src) -> contract name.
const CONTRACTS = [
  { file: 'TestStablecoin.sol', name: 'TestStablecoin' },
  { file: 'ValetAccount.sol', name: 'ValetAccount' },
];

// Compiler settings are part of the artifact's identity: change them and --check fails until
// the artifacts are rewritten.
const SETTINGS = {
  evmVersion: 'prague',
  optimizer: { enabled: true, runs: 200 },
  outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object'] } },
};

function die(message) {
  process.stderr.write(`compile-contracts: ${message}\n`);
  process.exit(1);
}

let solc;
try {
  solc = require(path.join(NODE_MODULES, 'solc'));
} catch (e) {
  die(`cannot load solc from tools/node_modules (${e.message}); run ./tools/install.sh`);
}

// Source unit names: `contracts/src/X.sol` for ours, `@scope/pkg/...` for npm packages.
// Only files inside contracts/src or tools/node_modules are ever read.
function findImport(unitName) {
  const candidates = unitName.startsWith('contracts/src/')
    ? [path.join(ROOT, unitName)]
    : [path.join(NODE_MODULES, unitName)];
  for (const file of candidates) {
    const resolved = path.resolve(file);
    const inside = [SOURCES, NODE_MODULES].some((dir) => resolved.startsWith(dir + path.sep));
    if (!inside) return { error: `import outside contracts/src and tools/node_modules: ${unitName}` };
    if (fs.existsSync(resolved)) return { contents: fs.readFileSync(resolved, 'utf8') };
  }
  return { error: `import not found: ${unitName} (is it in tools/package.json?)` };
}

function compile() {
  const sources = {};
  for (const c of CONTRACTS) {
    const unit = `contracts/src/${c.file}`;
    sources[unit] = { content: fs.readFileSync(path.join(ROOT, unit), 'utf8') };
  }
  const input = { language: 'Solidity', sources, settings: SETTINGS };
  const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImport }));
  const errors = (output.errors || []).filter((e) => e.severity === 'error');
  for (const e of output.errors || []) process.stderr.write(`${e.formattedMessage || e.message}\n`);
  if (errors.length > 0) die(`${errors.length} compiler error(s)`);

  const artifacts = {};
  for (const c of CONTRACTS) {
    const out = output.contracts?.[`contracts/src/${c.file}`]?.[c.name];
    if (!out) die(`no output for ${c.name} in ${c.file}`);
    const artifact = {
      contractName: c.name,
      sourceName: `contracts/src/${c.file}`,
      compiler: { solc: solc.version(), evmVersion: SETTINGS.evmVersion, optimizer: SETTINGS.optimizer },
      abi: out.abi,
      bytecode: `0x${out.evm.bytecode.object}`,
    };
    artifacts[`${c.name}.json`] = `${JSON.stringify(artifact, null, 2)}\n`;
  }
  return artifacts;
}

function main() {
  const args = process.argv.slice(2);
  const check = args.includes('--check');
  const unknown = args.filter((a) => a !== '--check');
  if (unknown.length > 0) {
    process.stderr.write(`usage: node tools/compile-contracts.js [--check]\n`);
    process.exit(2);
  }
  const artifacts = compile();
  let stale = 0;
  for (const [name, text] of Object.entries(artifacts)) {
    const file = path.join(ARTIFACTS, name);
    const current = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : null;
    if (check) {
      if (current !== text) {
        stale += 1;
        process.stderr.write(`contracts/artifacts/${name} is stale: run node tools/compile-contracts.js\n`);
      }
    } else if (current !== text) {
      fs.mkdirSync(ARTIFACTS, { recursive: true });
      fs.writeFileSync(file, text);
      process.stderr.write(`wrote contracts/artifacts/${name}\n`);
    } else {
      process.stderr.write(`contracts/artifacts/${name} is up to date\n`);
    }
  }
  if (stale > 0) process.exit(1);
}

main();
