// Sends a known set of spans, metric points and log records to an OTLP endpoint
// with the real OpenTelemetry JS SDK and its OTLP exporters, and records exactly
// what was handed to the exporter (and whether each export succeeded).
import { createRequire } from 'node:module';
import { randomBytes } from 'node:crypto';

const require = createRequire(import.meta.url);
const api = require('@opentelemetry/api');
const apiLogs = require('@opentelemetry/api-logs');
const { resourceFromAttributes } = require('@opentelemetry/resources');
const { BasicTracerProvider, BatchSpanProcessor } = require('@opentelemetry/sdk-trace-base');
const { MeterProvider, PeriodicExportingMetricReader } = require('@opentelemetry/sdk-metrics');
const { LoggerProvider, BatchLogRecordProcessor } = require('@opentelemetry/sdk-logs');

const EXPORTERS = {
  grpc: {
    traces: () => require('@opentelemetry/exporter-trace-otlp-grpc').OTLPTraceExporter,
    metrics: () => require('@opentelemetry/exporter-metrics-otlp-grpc').OTLPMetricExporter,
    logs: () => require('@opentelemetry/exporter-logs-otlp-grpc').OTLPLogExporter,
  },
  'http-protobuf': {
    traces: () => require('@opentelemetry/exporter-trace-otlp-proto').OTLPTraceExporter,
    metrics: () => require('@opentelemetry/exporter-metrics-otlp-proto').OTLPMetricExporter,
    logs: () => require('@opentelemetry/exporter-logs-otlp-proto').OTLPLogExporter,
  },
  'http-json': {
    traces: () => require('@opentelemetry/exporter-trace-otlp-http').OTLPTraceExporter,
    metrics: () => require('@opentelemetry/exporter-metrics-otlp-http').OTLPMetricExporter,
    logs: () => require('@opentelemetry/exporter-logs-otlp-http').OTLPLogExporter,
  },
};

export const TRANSPORTS = Object.keys(EXPORTERS);

export const SPANS_PER_TRANSPORT = 25; // 5 traces x 5 spans
export const LOGS_PER_TRANSPORT = 10;

export const TRACER_SCOPE = { name: 'otlpd-e2e-tracer', version: '1.0.0', schemaUrl: 'https://opentelemetry.io/schemas/1.24.0' };
export const METER_SCOPE = { name: 'otlpd-e2e-meter', version: '2.0.0' };
export const LOGGER_SCOPE = {
  name: 'otlpd-e2e-logger',
  version: '3.0.0',
  schemaUrl: 'https://opentelemetry.io/schemas/1.25.0',
  attributes: { 'scope.attr': 'logger-scope', 'scope.int': 7 },
};
export const RESOURCE_SCHEMA_URL = 'https://opentelemetry.io/schemas/1.26.0';

let diagInstalled = false;
function installDiag(verbose) {
  if (diagInstalled) return;
  diagInstalled = true;
  api.diag.setLogger(
    {
      error: (...a) => console.error('[otel-js error]', ...a),
      warn: (...a) => console.error('[otel-js warn]', ...a),
      info: (...a) => verbose && console.error('[otel-js info]', ...a),
      debug: () => {},
      verbose: () => {},
    },
    verbose ? api.DiagLogLevel.INFO : api.DiagLogLevel.WARN,
  );
}

/** Wraps an exporter so that every batch handed to it and every export result is recorded. */
function capturing(inner, sink) {
  const w = {
    export(items, resultCallback) {
      const batch = Array.isArray(items) ? items.slice() : items;
      let called = false;
      try {
        inner.export(items, (result) => {
          if (!called) {
            called = true;
            sink.push({ batch, result });
          }
          resultCallback(result);
        });
      } catch (err) {
        sink.push({ batch, result: { code: 1, error: err } });
        resultCallback({ code: 1, error: err });
      }
    },
    shutdown: () => inner.shutdown(),
    forceFlush: () => (inner.forceFlush ? inner.forceFlush() : Promise.resolve()),
  };
  if (typeof inner.selectAggregationTemporality === 'function') {
    w.selectAggregationTemporality = (t) => inner.selectAggregationTemporality(t);
  }
  if (typeof inner.selectAggregation === 'function') {
    w.selectAggregation = (t) => inner.selectAggregation(t);
  }
  return w;
}

function urls(transport, endpoints) {
  if (transport === 'grpc') {
    // The gRPC exporter needs an http:// scheme for a plaintext channel.
    return { traces: endpoints.grpc, metrics: endpoints.grpc, logs: endpoints.grpc };
  }
  return {
    traces: `${endpoints.http}/v1/traces`,
    metrics: `${endpoints.http}/v1/metrics`,
    logs: `${endpoints.http}/v1/logs`,
  };
}

function hr(sec, nanos) {
  // Normalised HrTime.
  const extra = Math.floor(nanos / 1e9);
  return [sec + extra, nanos - extra * 1e9];
}

const SEVERITIES = [
  [apiLogs.SeverityNumber.TRACE, 'TRACE'],
  [apiLogs.SeverityNumber.DEBUG, 'DEBUG'],
  [apiLogs.SeverityNumber.INFO, 'INFO'],
  [apiLogs.SeverityNumber.WARN, 'WARN'],
  [apiLogs.SeverityNumber.ERROR, 'ERROR'],
  [apiLogs.SeverityNumber.FATAL, 'FATAL'],
  [apiLogs.SeverityNumber.INFO2, 'INFO2'],
  [apiLogs.SeverityNumber.WARN3, 'WARN3'],
  [apiLogs.SeverityNumber.ERROR4, 'ERROR4'],
  [apiLogs.SeverityNumber.FATAL4, 'FATAL4'],
];

/**
 * The metric values recorded per transport, and what the cumulative points must be.
 * Used both to drive the instruments and as an independent cross-check of the SDK output.
 */
export const METRIC_PLAN = {
  'e2e.requests': {
    kind: 'counter', valueType: 'INT', unit: '{request}', description: 'Requests handled',
    points: [
      { attrs: { 'http.route': '/a', 'http.status_code': 200 }, adds: [5, 2], expect: { asInt: '7' } },
      { attrs: { 'http.route': '/b', 'http.status_code': 500 }, adds: [3], expect: { asInt: '3' } },
    ],
  },
  'e2e.bytes': {
    kind: 'counter', valueType: 'DOUBLE', unit: 'By', description: 'Bytes received',
    points: [{ attrs: { direction: 'in' }, adds: [1.5, 2.25], expect: { asDouble: 3.75 } }],
  },
  'e2e.latency': {
    kind: 'histogram', valueType: 'DOUBLE', unit: 'ms', description: 'Request latency',
    boundaries: [1, 10, 100, 1000],
    points: [
      {
        attrs: { 'http.route': '/a' },
        adds: [0.5, 5, 7.25, 50, 500, 5000],
        expect: { count: '6', sum: 5562.75, min: 0.5, max: 5000, bucketCounts: ['1', '2', '1', '1', '1'], explicitBounds: [1, 10, 100, 1000] },
      },
    ],
  },
  'e2e.queue_depth': {
    kind: 'updowncounter', valueType: 'INT', unit: '{item}', description: 'Items queued',
    points: [{ attrs: { queue: 'q1' }, adds: [10, -3], expect: { asInt: '7' } }],
  },
  'e2e.temperature': {
    kind: 'gauge', valueType: 'DOUBLE', unit: 'Cel', description: 'Room temperature',
    points: [{ attrs: { room: 'lab' }, adds: [21.5, 23.25], expect: { asDouble: 23.25 } }],
  },
};

/**
 * Send everything for one transport. Returns
 * { transport, spans: ReadableSpan[], logs: ReadableLogRecord[], metrics: ResourceMetrics[],
 *   created: {...}, errors: string[] }.
 */
export async function sendAll({ transport, endpoints, scenario, transportIndex, verbose = false, timeoutMillis = 8000 }) {
  installDiag(verbose);
  const exp = EXPORTERS[transport];
  if (!exp) throw new Error(`unknown transport ${transport}`);
  const u = urls(transport, endpoints);

  const resource = resourceFromAttributes(
    {
      'service.name': 'otlpd-e2e',
      'service.version': '0.1.0',
      'e2e.transport': transport,
      'e2e.scenario': scenario,
      'e2e.resource_int': 42 + transportIndex,
      'e2e.resource_double': 0.5 + transportIndex,
      'e2e.resource_array': ['r1', 'r2'],
    },
    { schemaUrl: RESOURCE_SCHEMA_URL },
  );

  const sink = { spans: [], metrics: [], logs: [] };
  const TraceExporter = exp.traces();
  const MetricExporter = exp.metrics();
  const LogExporter = exp.logs();
  const traceExporter = capturing(new TraceExporter({ url: u.traces, timeoutMillis }), sink.spans);
  const metricExporter = capturing(new MetricExporter({ url: u.metrics, timeoutMillis }), sink.metrics);
  const logExporter = capturing(new LogExporter({ url: u.logs, timeoutMillis }), sink.logs);

  const tracerProvider = new BasicTracerProvider({
    resource,
    spanProcessors: [new BatchSpanProcessor(traceExporter, { maxExportBatchSize: 10, scheduledDelayMillis: 100, exportTimeoutMillis: timeoutMillis })],
  });
  const meterProvider = new MeterProvider({
    resource,
    readers: [
      new PeriodicExportingMetricReader({
        exporter: metricExporter,
        // Long interval: the one export happens on shutdown().
        exportIntervalMillis: 3600000,
        exportTimeoutMillis: timeoutMillis,
      }),
    ],
  });
  const loggerProvider = new LoggerProvider({
    resource,
    processors: [new BatchLogRecordProcessor({ exporter: logExporter, maxExportBatchSize: 4, scheduledDelayMillis: 100, exportTimeoutMillis: timeoutMillis })],
  });

  const errors = [];
  const created = { logIds: [], spanContexts: [] };

  // ---------------------------------------------------------------- spans
  const tracer = tracerProvider.getTracer(TRACER_SCOPE.name, TRACER_SCOPE.version, { schemaUrl: TRACER_SCOPE.schemaUrl });
  const baseSec = Math.floor(Date.now() / 1000) - 600 + transportIndex * 100;
  let seq = 0;
  const spanAttrs = (i, role) => ({
    'e2e.seq': i,
    'e2e.role': role,
    'str': `value-${transport}-${i}`,
    'str.empty': '',
    'str.unicode': 'h\u00e9llo w\u00f6rld \u2713 \u65e5\u672c "quoted" back\\slash\nnewline\ttab \u{1F600}',
    'int': -1234567 * (i + 1),
    'int.zero': 0,
    'int.big': 9007199254740991 - i, // 2^53-1: beyond int32, exact in a double
    // Beyond 2^53. Over protobuf it is 2^60 exactly; the JSON exporter writes it as
    // 1152921504606847000, which a receiver must parse as that exact int64 (parsing
    // through a double would give ...976).
    'int.pow2_60': 2 ** 60,
    'int.neg_big': -(2 ** 62),
    'double': 3.14159 + i / 8,
    'double.tiny': 1.25e-7,
    'double.big': 1234567.891011,
    'double.neg': -0.001,
    'bool.true': true,
    'bool.false': false,
    'arr.str': ['a', 'b', `c${i}`],
    'arr.int': [1, -2, 3000000000],
    'arr.double': [1.5, -2.25, 1e-7],
    'arr.bool': [true, false],
  });
  const makeSpan = (name, kind, parentCtx, startHr, durNanos, role, extra = {}) => {
    const i = seq++;
    const span = tracer.startSpan(name, { kind, startTime: startHr, attributes: spanAttrs(i, role), links: extra.links }, parentCtx);
    span.addEvent('e2e.event', { 'event.seq': i, 'event.str': `ev-${i}`, 'event.double': 0.5 + i, 'event.bool': i % 2 === 0, 'event.arr': ['x', 'y'] }, hr(startHr[0], startHr[1] + 1000 + i));
    if (i % 4 === 0) span.addEvent('e2e.plain_event', hr(startHr[0], startHr[1] + 2000 + i));
    if (i % 3 === 0) span.setStatus({ code: api.SpanStatusCode.ERROR, message: `failure ${i}: boom \u2717` });
    else if (i % 3 === 1) span.setStatus({ code: api.SpanStatusCode.OK });
    span.end(hr(startHr[0], startHr[1] + durNanos));
    created.spanContexts.push(span.spanContext());
    return span;
  };

  let previousRoot = null;
  for (let t = 0; t < 5; t++) {
    const s0 = baseSec + t * 10;
    const n0 = (123456789 + t * 7919 + transportIndex * 1000003) % 1e9;
    let rootParent = api.ROOT_CONTEXT;
    if (t === 4) {
      // A root span whose parent is a remote context carrying a W3C tracestate.
      rootParent = api.trace.setSpanContext(api.ROOT_CONTEXT, {
        traceId: randomBytes(16).toString('hex'),
        spanId: randomBytes(8).toString('hex'),
        traceFlags: api.TraceFlags.SAMPLED,
        isRemote: true,
        traceState: api.createTraceState('vendor1=opaque1,vendor2=opaque2'),
      });
    }
    const links = previousRoot
      ? [{ context: previousRoot.spanContext(), attributes: { 'link.kind': 'previous-root', 'link.seq': t } }]
      : undefined;
    const root = makeSpan(`GET /api/items/${t}`, api.SpanKind.SERVER, rootParent, [s0, n0], 900000123, 'root', { links });
    const rootCtx = api.trace.setSpan(api.ROOT_CONTEXT, root);
    const client = makeSpan(`client call ${t}`, api.SpanKind.CLIENT, rootCtx, hr(s0, n0 + 1000001), 500000007, 'client');
    const clientCtx = api.trace.setSpan(api.ROOT_CONTEXT, client);
    makeSpan(`internal work ${t}`, api.SpanKind.INTERNAL, rootCtx, hr(s0, n0 + 2000003), 100000011, 'internal');
    const producer = makeSpan(`publish ${t}`, api.SpanKind.PRODUCER, clientCtx, hr(s0, n0 + 3000005), 50000013, 'grandchild');
    makeSpan(`consume ${t}`, api.SpanKind.CONSUMER, rootCtx, hr(s0, n0 + 4000007), 60000017, 'consumer', {
      links: [{ context: producer.spanContext(), attributes: { 'link.kind': 'producer' } }],
    });
    previousRoot = root;
  }

  // ---------------------------------------------------------------- logs
  const logger = loggerProvider.getLogger(LOGGER_SCOPE.name, LOGGER_SCOPE.version, {
    schemaUrl: LOGGER_SCOPE.schemaUrl,
    attributes: LOGGER_SCOPE.attributes,
  });
  for (let i = 0; i < LOGS_PER_TRANSPORT; i++) {
    const logId = `${scenario}/${transport}/log-${i}`;
    const [severityNumber, severityText] = SEVERITIES[i];
    let body;
    switch (i) {
      case 3: body = { msg: 'structured', count: 3, ratio: 0.75, ok: true, nested: { list: [1, 'two', 3.5, false] } }; break;
      case 5: body = undefined; break; // no body at all
      case 6: body = 42; break;
      case 7: body = 2.5; break;
      case 8: body = ['a', 1, true]; break;
      case 9: body = new Uint8Array([0, 1, 2, 250, 251, 252, 253, 254, 255]); break;
      default: body = `log message ${i} from ${transport} \u2014 \u00fcnic\u00f6de "q"`;
    }
    const record = {
      timestamp: [baseSec + 200 + i, (987654321 + i * 13) % 1e9],
      observedTimestamp: [baseSec + 200 + i, (987654321 + i * 13 + 17) % 1e9],
      severityNumber,
      severityText,
      attributes: {
        'e2e.log_id': logId,
        'log.int': i * 1000,
        'log.double': 0.25 + i,
        'log.bool': i % 2 === 0,
        'log.arr': ['x', `y${i}`],
      },
    };
    if (body !== undefined) record.body = body;
    if (i === 4) record.eventName = 'e2e.test_event';
    if (i < 8) {
      // Correlate with one of the spans sent above.
      record.context = api.trace.setSpanContext(api.ROOT_CONTEXT, created.spanContexts[i * 3]);
    }
    logger.emit(record);
    created.logIds.push(logId);
  }

  // ---------------------------------------------------------------- metrics
  const meter = meterProvider.getMeter(METER_SCOPE.name, METER_SCOPE.version);
  for (const [name, plan] of Object.entries(METRIC_PLAN)) {
    const opts = { unit: plan.unit, description: plan.description, valueType: api.ValueType[plan.valueType] };
    let inst;
    if (plan.kind === 'counter') inst = meter.createCounter(name, opts);
    else if (plan.kind === 'updowncounter') inst = meter.createUpDownCounter(name, opts);
    else if (plan.kind === 'gauge') inst = meter.createGauge(name, opts);
    else if (plan.kind === 'histogram') inst = meter.createHistogram(name, { ...opts, advice: { explicitBucketBoundaries: plan.boundaries } });
    for (const p of plan.points) {
      for (const v of p.adds) {
        if (plan.kind === 'histogram' || plan.kind === 'gauge') inst.record(v, p.attrs);
        else inst.add(v, p.attrs);
      }
    }
  }

  // ---------------------------------------------------------------- flush
  const settle = async (what, fn) => {
    try {
      await fn();
    } catch (err) {
      errors.push(`${transport}: ${what} failed: ${err && err.message ? err.message : err}`);
    }
  };
  await settle('tracerProvider.forceFlush()', () => tracerProvider.forceFlush());
  await settle('loggerProvider.forceFlush()', () => loggerProvider.forceFlush());
  // A metric reader's shutdown() collects and exports once (cumulative); no forceFlush before it.
  await settle('meterProvider.shutdown()', () => meterProvider.shutdown());
  await settle('tracerProvider.shutdown()', () => tracerProvider.shutdown());
  await settle('loggerProvider.shutdown()', () => loggerProvider.shutdown());

  const describe = (err) => {
    if (!err) return 'unknown error';
    let m = err.message || String(err);
    if (err.code !== undefined) m += ` (code ${err.code})`;
    if (err.data) m += `; response: ${String(err.data).slice(0, 500)}`;
    return m;
  };
  const collect = (label, entries) => {
    const batches = [];
    const failed = new Map();
    for (const e of entries) {
      if (!e.result || e.result.code !== 0) {
        const m = `${transport}: export of ${label} to ${u[label]} failed: ${describe(e.result && e.result.error)}`;
        failed.set(m, (failed.get(m) ?? 0) + 1);
      }
      batches.push(e.batch);
    }
    for (const [m, n] of failed) errors.push(n > 1 ? `${m} [${n} export calls]` : m);
    return batches;
  };
  const spans = collect('traces', sink.spans).flat();
  const logs = collect('logs', sink.logs).flat();
  const metrics = collect('metrics', sink.metrics);

  // Harness self-checks: the SDK must have handed everything to the exporter exactly once.
  if (spans.length !== SPANS_PER_TRANSPORT) {
    errors.push(`${transport}: (test harness) the SDK exported ${spans.length} spans, expected ${SPANS_PER_TRANSPORT}`);
  }
  if (logs.length !== LOGS_PER_TRANSPORT) {
    errors.push(`${transport}: (test harness) the SDK exported ${logs.length} log records, expected ${LOGS_PER_TRANSPORT}`);
  }
  const nonEmptyMetricExports = metrics.filter((rm) => rm.scopeMetrics.some((sm) => sm.metrics.length > 0));
  if (nonEmptyMetricExports.length !== 1) {
    errors.push(`${transport}: (test harness) expected exactly one non-empty metrics export, got ${nonEmptyMetricExports.length}`);
  }

  return { transport, spans, logs, metrics: nonEmptyMetricExports, created, errors, urls: u };
}
