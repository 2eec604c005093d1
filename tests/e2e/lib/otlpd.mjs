// Starting, probing and stopping otlpd processes; config generation; free ports.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { spawn } from 'node:child_process';

const live = new Set();

/** Kill every otlpd child that is still running (used on exit / abort). */
export function killAll(signal = 'SIGKILL') {
  for (const p of live) {
    try {
      p.child.kill(signal);
    } catch {
      // already gone
    }
  }
}

/** Reserve `n` distinct free TCP ports on 127.0.0.1 (listen on port 0, then close). */
export async function freePorts(n) {
  const servers = [];
  try {
    for (let i = 0; i < n; i++) {
      const srv = net.createServer();
      await new Promise((resolve, reject) => {
        srv.once('error', reject);
        srv.listen(0, '127.0.0.1', resolve);
      });
      servers.push(srv);
    }
    return servers.map((s) => s.address().port);
  } finally {
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  }
}

/** An error whose message says it all (no stack trace needed in the report). */
export function expectedError(msg) {
  return Object.assign(new Error(msg), { expected: true });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function canConnect(port) {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    const done = (ok) => {
      sock.removeAllListeners();
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(500, () => done(false));
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
  });
}

const q = (s) => JSON.stringify(String(s)); // a double-quoted YAML scalar

/**
 * Collector-layout YAML. `exporter` is { name, lines: [...] } with the exporter's own
 * settings (already indented relative to the exporter key).
 */
export function makeConfig({ grpcPort, httpPort, exporter, logLevel = 'info' }) {
  const pipelines = ['traces', 'metrics', 'logs']
    .map((sig) => [
      `    ${sig}:`,
      '      receivers: [otlp]',
      '      processors: [batch]',
      `      exporters: [${exporter.name}]`,
    ].join('\n'))
    .join('\n');
  return [
    'receivers:',
    '  otlp:',
    '    protocols:',
    '      grpc:',
    `        endpoint: ${q(`127.0.0.1:${grpcPort}`)}`,
    '      http:',
    `        endpoint: ${q(`127.0.0.1:${httpPort}`)}`,
    'processors:',
    '  batch:',
    '    schedule_delay: 200ms',
    '    max_export_batch_size: 512',
    'exporters:',
    `  ${exporter.name}:`,
    ...exporter.lines.map((l) => `    ${l}`),
    'service:',
    '  telemetry:',
    '    logs:',
    `      level: ${logLevel}`,
    '    metrics:', // an ephemeral port: the default 127.0.0.1:8888 would collide between A and B
    `      address: ${q('127.0.0.1:0')}`,
    '  pipelines:',
    pipelines,
    '',
  ].join('\n');
}

export function fileExporter(outFile) {
  return { name: 'file', lines: [`path: ${q(outFile)}`] };
}

/** The forwarding exporter of otlpd A for each scenario, pointed at B's receivers. */
export const SCENARIOS = {
  otlp: {
    description: 'A forwards with the OTLP/gRPC exporter (otlp) to B\'s gRPC receiver',
    exporter: (b) => ({
      name: 'otlp',
      lines: [`endpoint: ${q(`127.0.0.1:${b.grpcPort}`)}`, 'tls:', '  insecure: true'],
    }),
  },
  otlphttp_proto: {
    description: 'A forwards with the OTLP/HTTP exporter (otlphttp, encoding proto, gzip) to B\'s HTTP receiver',
    exporter: (b) => ({
      name: 'otlphttp',
      lines: [`endpoint: ${q(`http://127.0.0.1:${b.httpPort}`)}`, 'encoding: proto', 'compression: gzip'],
    }),
  },
  otlphttp_json: {
    description: 'A forwards with the OTLP/HTTP exporter (otlphttp, encoding json, no compression) to B\'s HTTP receiver',
    exporter: (b) => ({
      name: 'otlphttp',
      lines: [`endpoint: ${q(`http://127.0.0.1:${b.httpPort}`)}`, 'encoding: json', 'compression: none'],
    }),
  },
};

function childEnv() {
  const env = { ...process.env };
  // gRPC (C++ and JS) honours proxy variables; everything here is loopback.
  for (const k of Object.keys(env)) {
    if (/^(https?|grpc|all|no)_proxy$/i.test(k)) delete env[k];
  }
  env.no_proxy = '127.0.0.1,localhost';
  env.NO_PROXY = '127.0.0.1,localhost';
  return env;
}

export class Otlpd {
  constructor({ name, binary, dir, config, grpcPort, httpPort }) {
    this.name = name;
    this.binary = binary;
    this.grpcPort = grpcPort;
    this.httpPort = httpPort;
    this.configPath = path.join(dir, `${name}.yaml`);
    this.stdoutPath = path.join(dir, `${name}.stdout.log`);
    this.stderrPath = path.join(dir, `${name}.stderr.log`);
    fs.writeFileSync(this.configPath, config);
    this.exit = null; // { code, signal } once exited
    this.stopping = false;
  }

  start() {
    const out = fs.openSync(this.stdoutPath, 'w');
    const err = fs.openSync(this.stderrPath, 'w');
    this.child = spawn(this.binary, ['--config', this.configPath], {
      stdio: ['ignore', out, err],
      env: childEnv(),
    });
    fs.closeSync(out);
    fs.closeSync(err);
    live.add(this);
    this.exited = new Promise((resolve) => {
      this.child.once('error', (e) => {
        this.exit = { code: null, signal: null, error: e.message };
        live.delete(this);
        resolve(this.exit);
      });
      this.child.once('exit', (code, signal) => {
        this.exit = { code, signal };
        live.delete(this);
        resolve(this.exit);
      });
    });
  }

  describeExit() {
    if (!this.exit) return 'still running';
    if (this.exit.error) return `failed to start: ${this.exit.error}`;
    if (this.exit.signal) return `killed by signal ${this.exit.signal}`;
    return `exited with code ${this.exit.code}`;
  }

  /** Wait until both receiver ports accept TCP connections. */
  async waitReady(timeoutMs) {
    const deadline = Date.now() + timeoutMs;
    const pending = new Set([this.grpcPort, this.httpPort]);
    while (Date.now() < deadline) {
      if (this.exit) throw expectedError(`otlpd ${this.name} ${this.describeExit()} before its receivers were up`);
      for (const p of [...pending]) if (await canConnect(p)) pending.delete(p);
      if (pending.size === 0) return;
      await sleep(50);
    }
    throw expectedError(`otlpd ${this.name}: receiver port(s) ${[...pending].join(', ')} not accepting connections after ${timeoutMs} ms`);
  }

  /** SIGTERM, wait for a clean exit (code 0); SIGKILL after timeoutMs. Returns an error string or null. */
  async stop(timeoutMs) {
    if (!this.child) return null;
    if (this.exit) {
      return `otlpd ${this.name} had already ${this.describeExit()} before it was asked to stop`;
    }
    this.stopping = true;
    const t0 = Date.now();
    this.child.kill('SIGTERM');
    const res = await Promise.race([this.exited, sleep(timeoutMs).then(() => null)]);
    if (!res) {
      this.child.kill('SIGKILL');
      await this.exited;
      return `otlpd ${this.name} did not exit within ${timeoutMs} ms of SIGTERM (killed with SIGKILL)`;
    }
    if (res.code !== 0) return `otlpd ${this.name} ${this.describeExit()} ${Date.now() - t0} ms after SIGTERM (expected a clean exit with code 0)`;
    return null;
  }

  logs(maxLines = 200) {
    const tail = (p) => {
      let t;
      try {
        t = fs.readFileSync(p, 'utf8');
      } catch (e) {
        return `<cannot read: ${e.message}>`;
      }
      const lines = t.split('\n');
      if (lines.length > maxLines) return `... (${lines.length - maxLines} earlier lines in ${p})\n${lines.slice(-maxLines).join('\n')}`;
      return t;
    };
    return [
      `----- otlpd ${this.name}: ${this.binary} --config ${this.configPath} (${this.describeExit()})`,
      `----- ${this.name} config:`,
      fs.readFileSync(this.configPath, 'utf8').trimEnd(),
      `----- ${this.name} stdout (${this.stdoutPath}):`,
      tail(this.stdoutPath).trimEnd(),
      `----- ${this.name} stderr (${this.stderrPath}):`,
      tail(this.stderrPath).trimEnd(),
      `----- end of otlpd ${this.name}`,
    ].join('\n');
  }
}
