// Turns what the JS SDK handed to its exporters (ReadableSpan, ReadableLogRecord,
// ResourceMetrics) into the canonical expected items that check.mjs compares
// with otlpd's file output.
import { createRequire } from 'node:module';
import { anyFromJs, attrsFromJs, attrsKey, attrsLabel, canonAnyString, diff, hrToNanos, jsIntToWire, spanFlags } from './canon.mjs';
import { METRIC_PLAN } from './send.mjs';

const require = createRequire(import.meta.url);
const { DataPointType, AggregationTemporality } = require('@opentelemetry/sdk-metrics');
const { ValueType } = require('@opentelemetry/api');

function resourceCanon(resource, json) {
  return {
    attributes: attrsFromJs(resource.attributes, json),
    droppedAttributesCount: 0,
    schemaUrl: resource.schemaUrl ?? '',
  };
}

function scopeCanon(scope, json) {
  return {
    name: scope.name ?? '',
    version: scope.version ?? '',
    attributes: attrsFromJs(scope.attributes ?? {}, json),
    droppedAttributesCount: scope.attributes ? scope.droppedAttributesCount ?? 0 : 0,
    schemaUrl: scope.schemaUrl ?? '',
  };
}

export function expectedSpan(rs, json = false) {
  const ctx = rs.spanContext();
  const parent = rs.parentSpanContext;
  return {
    traceId: ctx.traceId,
    spanId: ctx.spanId,
    parentSpanId: parent?.spanId ?? '',
    traceState: ctx.traceState?.serialize() ?? '',
    flags: spanFlags(ctx.traceFlags, parent?.isRemote),
    name: rs.name,
    kind: rs.kind + 1, // the API has no UNSPECIFIED
    startTimeUnixNano: hrToNanos(rs.startTime),
    endTimeUnixNano: hrToNanos(rs.endTime),
    attributes: attrsFromJs(rs.attributes, json),
    droppedAttributesCount: rs.droppedAttributesCount ?? 0,
    events: rs.events.map((e) => ({
      timeUnixNano: hrToNanos(e.time),
      name: e.name,
      attributes: attrsFromJs(e.attributes ?? {}, json),
      droppedAttributesCount: e.droppedAttributesCount ?? 0,
    })),
    droppedEventsCount: rs.droppedEventsCount ?? 0,
    links: rs.links.map((l) => ({
      traceId: l.context.traceId,
      spanId: l.context.spanId,
      traceState: l.context.traceState?.serialize() ?? '',
      attributes: attrsFromJs(l.attributes ?? {}, json),
      droppedAttributesCount: l.droppedAttributesCount ?? 0,
      flags: spanFlags(l.context.traceFlags, l.context.isRemote),
    })),
    droppedLinksCount: rs.droppedLinksCount ?? 0,
    status: { code: rs.status?.code ?? 0, message: rs.status?.message ?? '' },
  };
}

export function expectedLog(lr, json = false) {
  const body = anyFromJs(lr.body, json);
  return {
    timeUnixNano: hrToNanos(lr.hrTime),
    observedTimeUnixNano: hrToNanos(lr.hrTimeObserved),
    severityNumber: lr.severityNumber ?? 0,
    severityText: lr.severityText ?? '',
    body: Object.keys(body).length ? canonAnyString(body) : undefined,
    eventName: lr.eventName ?? '',
    attributes: attrsFromJs(lr.attributes, json),
    droppedAttributesCount: lr.droppedAttributesCount ?? 0,
    flags: lr.spanContext?.traceFlags ?? 0,
    traceId: lr.spanContext?.traceId ?? '',
    spanId: lr.spanContext?.spanId ?? '',
  };
}

function temporality(t) {
  if (t === AggregationTemporality.DELTA) return 1;
  if (t === AggregationTemporality.CUMULATIVE) return 2;
  return 0;
}

/** Returns [{ key, metric, point, scope }] for one ResourceMetrics. */
export function expectedPoints(rm, json = false) {
  const out = [];
  for (const sm of rm.scopeMetrics) {
    for (const md of sm.metrics) {
      const d = md.descriptor;
      const metric = { name: d.name, description: d.description ?? '', unit: d.unit ?? '' };
      let type;
      switch (md.dataPointType) {
        case DataPointType.SUM:
          type = 'sum';
          metric.type = type;
          metric.aggregationTemporality = temporality(md.aggregationTemporality);
          metric.isMonotonic = !!md.isMonotonic;
          break;
        case DataPointType.GAUGE:
          type = 'gauge';
          metric.type = type;
          break;
        case DataPointType.HISTOGRAM:
          type = 'histogram';
          metric.type = type;
          metric.aggregationTemporality = temporality(md.aggregationTemporality);
          break;
        default:
          throw new Error(`(test harness) unexpected data point type ${md.dataPointType} for ${d.name}`);
      }
      for (const dp of md.dataPoints) {
        const attributes = attrsFromJs(dp.attributes, json);
        const point = {
          attributes,
          startTimeUnixNano: hrToNanos(dp.startTime),
          timeUnixNano: hrToNanos(dp.endTime),
          flags: 0,
        };
        if (type === 'histogram') {
          const h = dp.value;
          point.count = String(h.count);
          point.sum = h.sum;
          point.min = h.min;
          point.max = h.max;
          point.bucketCounts = h.buckets.counts.map((c) => String(c));
          point.explicitBounds = h.buckets.boundaries.slice();
        } else if (d.valueType === ValueType.INT) {
          point.asInt = jsIntToWire(dp.value, json);
        } else {
          point.asDouble = dp.value;
        }
        out.push({
          key: `${sm.scope.name}|${d.name}|${attrsKey(attributes)}`,
          metric,
          point,
          scope: scopeCanon(sm.scope, json),
        });
      }
    }
  }
  return out;
}

/** Cross-check the SDK's points against METRIC_PLAN (guards the harness itself). */
function checkPlan(transport, points, errors) {
  const seen = new Set();
  for (const [name, plan] of Object.entries(METRIC_PLAN)) {
    for (const p of plan.points) {
      const key = attrsKey(attrsFromJs(p.attrs));
      const got = points.find((x) => x.metric.name === name && attrsKey(x.point.attributes) === key);
      if (!got) {
        errors.push(`${transport}: (test harness) the SDK produced no point for ${name} ${key}`);
        continue;
      }
      seen.add(got);
      const actual = {};
      for (const k of Object.keys(p.expect)) actual[k] = got.point[k];
      const d = [];
      diff(`${name}${attrsLabel(attrsFromJs(p.attrs))}`, p.expect, actual, d);
      for (const m of d) errors.push(`${transport}: (test harness) SDK point differs from the plan: ${m}`);
    }
  }
  for (const x of points) {
    if (!seen.has(x)) errors.push(`${transport}: (test harness) unplanned SDK point ${x.key}`);
  }
}

/**
 * Build the expected set from sendAll() results.
 * Returns { spans: Map, logs: Map, points: Map, errors: [] } where each map value is
 * { transport, label, canon, resource, scope[, metric] }.
 */
export function buildExpected(results) {
  const spans = new Map();
  const logs = new Map();
  const points = new Map();
  const errors = [];
  for (const r of results) {
    const t = r.transport;
    const json = t === 'http-json'; // what the OTLP/HTTP JSON exporter puts on the wire
    r.spans.forEach((rs, idx) => {
      const canon = expectedSpan(rs, json);
      const key = `${canon.traceId}/${canon.spanId}`;
      if (spans.has(key)) errors.push(`(test harness) duplicate span id ${key}`);
      spans.set(key, {
        transport: t,
        label: `${t} span #${idx} "${canon.name}" traceId=${canon.traceId} spanId=${canon.spanId}`,
        canon,
        resource: resourceCanon(rs.resource, json),
        scope: scopeCanon(rs.instrumentationScope, json),
      });
    });
    for (const lr of r.logs) {
      const canon = expectedLog(lr, json);
      const id = lr.attributes['e2e.log_id'];
      if (logs.has(id)) errors.push(`(test harness) duplicate log id ${id}`);
      logs.set(id, {
        transport: t,
        label: `${t} log record e2e.log_id=${JSON.stringify(id)}`,
        canon,
        resource: resourceCanon(lr.resource, json),
        scope: scopeCanon(lr.instrumentationScope, json),
      });
    }
    const transportPoints = [];
    for (const rm of r.metrics) {
      for (const p of expectedPoints(rm, json)) {
        transportPoints.push(p);
        const key = `${t}|${p.key}`;
        if (points.has(key)) errors.push(`(test harness) duplicate metric point ${key}`);
        points.set(key, {
          transport: t,
          label: `${t} metric point ${p.metric.name} ${attrsLabel(p.point.attributes)}`,
          canon: p.point,
          metric: p.metric,
          resource: resourceCanon(rm.resource, json),
          scope: p.scope,
        });
      }
    }
    checkPlan(t, transportPoints, errors);
  }
  return { spans, logs, points, errors };
}
