#!/usr/bin/env node
// End-to-end interop test of otlpd with the OpenTelemetry JavaScript SDK exporters.
//
//   node tests/e2e/e2e.mjs --otlpd <path-to-otlpd> [--scenario NAME[,NAME...]]
//   node tests/e2e/e2e.mjs --install      # npm ci in tests/e2e if node_modules is missing/stale
//   node tests/e2e/e2e.mjs --list
//
// Per scenario: otlpd B (OTLP receivers -> batch -> file exporter) and otlpd A
// (OTLP receivers -> batch -> forwarding exporter pointed at B) are started; the JS
// SDK sends spans, metrics and logs to A over gRPC, HTTP/protobuf and HTTP/JSON;
// the test waits until B's file holds everything, stops A then B with SIGTERM and
// compares every item field by field with what the SDK exported.
// Exit code 0 = all selected scenarios passed.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));

function usage(msg) {
  if (msg) console.error(`e2e: ${msg}`);
  console.error(`usage: node ${path.relative(process.cwd(), fileURLToPath(import.meta.url)) || 'e2e.mjs'} --otlpd PATH [options]
  --otlpd PATH          the otlpd binary under test (required unless --install/--list)
  --scenario NAME       scenario(s) to run, comma-separated or repeated; default (or 'all'): all
  --timeout SEC         per-scenario time limit (default 60)
  --wait SEC            how long to wait for B's file to hold everything (default 20)
  --log-level LEVEL     service.telemetry.logs.level for both otlpd (default info)
  --keep                keep the temp directory even when the scenario passes
  --verbose             more output (progress, OpenTelemetry JS diagnostics)
  --install             run 'npm ci' in ${HERE} if node_modules is missing or stale, then exit
  --list                list scenario names and exit`);
  process.exit(2);
}

function parseArgs(argv) {
  const o = { scenarios: [], timeout: 60, wait: 20, logLevel: 'info', keep: false, verbose: false, install: false, list: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      if (i + 1 >= argv.length) usage(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--otlpd') o.otlpd = val();
    else if (a === '--scenario') o.scenarios.push(...val().split(',').filter(Boolean));
    else if (a === '--timeout') o.timeout = Number(val());
    else if (a === '--wait') o.wait = Number(val());
    else if (a === '--log-level') o.logLevel = val();
    else if (a === '--keep') o.keep = true;
    else if (a === '--verbose' || a === '-v') o.verbose = true;
    else if (a === '--install') o.install = true;
    else if (a === '--list') o.list = true;
    else if (a === '--help' || a === '-h') usage();
    else usage(`unknown argument ${a}`);
  }
  if (!(o.timeout > 0) || !(o.wait > 0)) usage('--timeout and --wait must be positive numbers');
  return o;
}

function depsState() {
  const hidden = path.join(HERE, 'node_modules', '.package-lock.json');
  const lock = path.join(HERE, 'package-lock.json');
  if (!fs.existsSync(hidden)) return 'missing';
  try {
    const want = JSON.parse(fs.readFileSync(lock, 'utf8')).packages ?? {};
    const have = JSON.parse(fs.readFileSync(hidden, 'utf8')).packages ?? {};
    for (const [p, meta] of Object.entries(want)) {
      if (p === '') continue;
      if (!have[p] || have[p].version !== meta.version) return 'stale';
    }
  } catch {
    return 'stale';
  }
  return 'ok';
}

function install() {
  const state = depsState();
  if (state === 'ok') {
    console.log(`e2e: node_modules in ${HERE} is up to date`);
    return 0;
  }
  console.log(`e2e: node_modules is ${state}; running npm ci in ${HERE}`);
  const r = spawnSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: HERE, stdio: 'inherit' });
  if (r.error) {
    console.error(`e2e: cannot run npm: ${r.error.message}`);
    return 1;
  }
  return r.status === 0 ? 0 : 1;
}

const opts = parseArgs(process.argv.slice(2));
if (opts.install) process.exit(install());

// The SDK reads OTEL_* variables (headers, compression, endpoints...): keep the run hermetic.
for (const k of Object.keys(process.env)) {
  if (k.startsWith('OTEL_') || /^(https?|grpc|all)_proxy$/i.test(k)) delete process.env[k];
}
process.env.no_proxy = process.env.NO_PROXY = '127.0.0.1,localhost';

const { SCENARIOS, Otlpd, freePorts, makeConfig, fileExporter, killAll, sleep } = await import('./lib/otlpd.mjs');

if (opts.list) {
  for (const [n, s] of Object.entries(SCENARIOS)) console.log(`${n}\t${s.description}`);
  process.exit(0);
}
if (!opts.otlpd) usage('--otlpd is required');
const selected = opts.scenarios.length && !opts.scenarios.includes('all') ? opts.scenarios : Object.keys(SCENARIOS);
for (const s of selected) if (!SCENARIOS[s]) usage(`unknown scenario ${JSON.stringify(s)} (known: ${Object.keys(SCENARIOS).join(', ')})`);
const binary = path.resolve(opts.otlpd);
try {
  fs.accessSync(binary, fs.constants.X_OK);
} catch {
  console.error(`e2e: FAIL: otlpd binary ${binary} does not exist or is not executable`);
  process.exit(1);
}

if (depsState() === 'missing') {
  console.error(`e2e: FAIL: the OpenTelemetry JS SDK is not installed in ${HERE}/node_modules.\n` +
    `      run: node ${path.join(HERE, 'e2e.mjs')} --install   (or: npm ci --prefix ${HERE})`);
  process.exit(1);
}
const { sendAll, TRANSPORTS } = await import('./lib/send.mjs');
const { buildExpected } = await import('./lib/expect.mjs');
const { parseOutput, isComplete, progress, compare, summarize } = await import('./lib/check.mjs');

// Never leave otlpd processes behind.
process.on('exit', () => killAll('SIGKILL'));
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    console.error(`e2e: received ${sig}, killing otlpd children`);
    killAll('SIGKILL');
    process.exit(128 + (os.constants.signals[sig] ?? 1));
  });
}

const log = (...a) => console.log(...a);
const vlog = (...a) => opts.verbose && console.log(...a);

const MAX_FAILURE_LINES = 80;

async function runScenario(name) {
  const sc = SCENARIOS[name];
  const t0 = Date.now();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), `otlpd-e2e-${name}-`));
  const outFile = path.join(tmp, 'b-out.jsonl');
  const state = { phase: 'setup', procs: [], failures: [], aborted: false };
  // After a timeout the scenario body may still be awaiting something: make it stop at
  // its next step instead of starting processes or sending after the cleanup.
  const step = (phase) => {
    if (state.aborted) throw new Error('scenario aborted');
    state.phase = phase;
  };
  log(`=== scenario ${name}: ${sc.description}`);
  log(`    temp dir ${tmp}`);

  const body = async () => {
    step('allocating ports');
    const [bg, bh, ag, ah] = await freePorts(4);

    step('starting otlpd B');
    const b = new Otlpd({
      name: 'B', binary, dir: tmp, grpcPort: bg, httpPort: bh,
      config: makeConfig({ grpcPort: bg, httpPort: bh, exporter: fileExporter(outFile), logLevel: opts.logLevel }),
    });
    state.procs.push(b);
    b.start();
    await b.waitReady(10000);
    vlog(`    B ready (grpc ${bg}, http ${bh})`);

    step('starting otlpd A');
    const a = new Otlpd({
      name: 'A', binary, dir: tmp, grpcPort: ag, httpPort: ah,
      config: makeConfig({ grpcPort: ag, httpPort: ah, exporter: sc.exporter({ grpcPort: bg, httpPort: bh }), logLevel: opts.logLevel }),
    });
    state.procs.push(a);
    a.start();
    await a.waitReady(10000);
    vlog(`    A ready (grpc ${ag}, http ${ah})`);

    const endpoints = { grpc: `http://127.0.0.1:${ag}`, http: `http://127.0.0.1:${ah}` };
    const results = [];
    for (let i = 0; i < TRANSPORTS.length; i++) {
      const transport = TRANSPORTS[i];
      step(`sending over ${transport}`);
      const ts = Date.now();
      const r = await sendAll({ transport, endpoints, scenario: name, transportIndex: i, verbose: opts.verbose });
      vlog(`    sent over ${transport} in ${Date.now() - ts} ms: ${r.spans.length} spans, ${r.logs.length} logs, ${r.metrics.length} metrics export(s)`);
      results.push(r);
      if (r.errors.length) {
        state.failures.push(...r.errors.map((e) => `sending: ${e}`));
        for (const p of [a, b]) if (p.exit) state.failures.push(`otlpd ${p.name} ${p.describeExit()} while sending`);
        return; // the comparison would only repeat the export failure
      }
    }

    step('building the expected set');
    const expected = buildExpected(results);
    if (expected.errors.length) {
      state.failures.push(...expected.errors);
      return;
    }
    log(`    sent to A: ${expected.spans.size} spans, ${expected.logs.size} log records, ${expected.points.size} metric points over ${TRANSPORTS.join(', ')}`);

    step(`waiting for B's output file (up to ${opts.wait} s)`);
    const deadline = Date.now() + opts.wait * 1000;
    let parsed = parseOutput(outFile);
    let lastProgress = '';
    while (!isComplete(expected, parsed.found) && Date.now() < deadline) {
      for (const p of [a, b]) {
        if (p.exit) {
          state.failures.push(`otlpd ${p.name} ${p.describeExit()} while the data was being forwarded`);
          return;
        }
      }
      if (parsed.errors.length) break; // malformed output: no point in waiting
      const pr = progress(expected, parsed.found);
      if (pr !== lastProgress) vlog(`    B's file: ${pr}`);
      lastProgress = pr;
      await sleep(100);
      parsed = parseOutput(outFile);
    }
    const complete = isComplete(expected, parsed.found);
    if (!complete) {
      state.failures.push(`B's output file did not hold all items within ${opts.wait} s: ${progress(expected, parsed.found)}`);
    } else {
      log(`    B's file complete after ${((Date.now() - (deadline - opts.wait * 1000)) / 1000).toFixed(1)} s`);
    }

    // Stop A first (it drains into B), then B (it drains into the file).
    step('stopping otlpd A');
    const ea = await a.stop(10000);
    if (ea) state.failures.push(ea);
    step('stopping otlpd B');
    const eb = await b.stop(10000);
    if (eb) state.failures.push(eb);

    step('checking B\'s output');
    parsed = parseOutput(outFile, { final: true });
    log(`    B's file: ${summarize(parsed)}`);
    state.failures.push(...compare(expected, parsed));
  };

  let timer;
  const timeout = new Promise((resolve) => {
    timer = setTimeout(() => resolve('timeout'), opts.timeout * 1000);
  });
  try {
    const r = await Promise.race([body().then(() => 'done'), timeout]);
    if (r === 'timeout') {
      state.aborted = true;
      state.failures.push(`scenario timed out after ${opts.timeout} s while ${state.phase}`);
    }
  } catch (err) {
    state.aborted = true;
    const text = err && err.expected ? err.message : err && err.stack ? err.stack : String(err);
    state.failures.push(`error while ${state.phase}: ${text}`);
  } finally {
    clearTimeout(timer);
  }
  // Whatever happened, no otlpd outlives its scenario.
  for (const p of state.procs) {
    if (!p.exit && p.child) {
      p.child.kill('SIGKILL');
      await Promise.race([p.exited, sleep(2000)]);
    }
  }

  const secs = ((Date.now() - t0) / 1000).toFixed(1);
  if (state.failures.length === 0) {
    log(`PASS scenario ${name} (${secs} s)`);
    if (!opts.keep) fs.rmSync(tmp, { recursive: true, force: true });
    return true;
  }
  const f = state.failures;
  console.log(`FAIL scenario ${name} (${secs} s): ${f.length} problem(s)`);
  for (const m of f.slice(0, MAX_FAILURE_LINES)) console.log(`  - ${m}`);
  if (f.length > MAX_FAILURE_LINES) console.log(`  ... and ${f.length - MAX_FAILURE_LINES} more`);
  for (const p of state.procs) console.log(p.logs());
  let size = 0;
  try {
    size = fs.statSync(outFile).size;
  } catch {
    // no file
  }
  console.log(`----- B's output file ${outFile} (${size} bytes)${size ? ', first 3000 bytes:' : ''}`);
  if (size) console.log(fs.readFileSync(outFile, 'utf8').slice(0, 3000));
  console.log(`----- kept temp dir ${tmp}`);
  return false;
}

let passed = 0;
let failed = 0;
for (const s of selected) {
  if (await runScenario(s)) passed++;
  else failed++;
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
