// Reads otlpd's file exporter output (one OTLP/JSON Export*ServiceRequest per line),
// validates the OTLP/JSON encoding rules that matter for interop, reduces every
// span / log record / metric point to the canonical form of canon.mjs, and compares
// it with what the JS SDK sent.
import fs from 'node:fs';
import { attrsKey, canonAnyString, diff } from './canon.mjs';

const TOP_LEVEL = { resourceSpans: 'spans', resourceMetrics: 'metrics', resourceLogs: 'logs' };

/** Collects OTLP/JSON encoding violations, deduplicated by message. */
class FormatErrors {
  constructor() {
    this.map = new Map();
  }
  add(msg, where) {
    const e = this.map.get(msg);
    if (e) e.count++;
    else this.map.set(msg, { count: 1, where });
  }
  list() {
    return [...this.map.entries()].map(([m, e]) => `${m} (first at ${e.where}${e.count > 1 ? `; ${e.count} occurrences` : ''})`);
  }
}

// ----------------------------------------------------------------- scalar readers
function u64(v, field, fe, where) {
  if (v === undefined || v === null) return '0';
  if (typeof v === 'string') {
    if (/^\d+$/.test(v)) return BigInt(v).toString();
    fe.add(`${field} ${JSON.stringify(v)} is not a decimal string`, where);
    return v;
  }
  if (typeof v === 'number') {
    fe.add(`${field} is a JSON number; OTLP/JSON encodes 64-bit integers as decimal strings`, where);
    return Number.isInteger(v) ? BigInt(v).toString() : String(v);
  }
  fe.add(`${field} has JSON type ${typeof v}, expected a decimal string`, where);
  return String(v);
}

function i64(v, field, fe, where) {
  if (v === undefined || v === null) return '0';
  if (typeof v === 'string') {
    if (/^-?\d+$/.test(v)) return BigInt(v).toString();
    fe.add(`${field} ${JSON.stringify(v)} is not a decimal string`, where);
    return v;
  }
  if (typeof v === 'number') {
    fe.add(`${field} is a JSON number; OTLP/JSON encodes 64-bit integers as decimal strings`, where);
    return Number.isInteger(v) ? BigInt(v).toString() : String(v);
  }
  fe.add(`${field} has JSON type ${typeof v}, expected a decimal string`, where);
  return String(v);
}

function u32(v, field, fe, where) {
  if (v === undefined || v === null) return 0;
  if (typeof v === 'number' && Number.isInteger(v)) return v;
  fe.add(`${field} has value ${JSON.stringify(v)}, expected a JSON integer`, where);
  return typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v;
}

function enumInt(v, field, fe, where) {
  if (v === undefined || v === null) return 0;
  if (typeof v === 'number' && Number.isInteger(v)) return v;
  fe.add(`${field} is ${JSON.stringify(v)}; OTLP/JSON encodes enums as integers`, where);
  return v;
}

function dbl(v, field, fe, where) {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'number') return v;
  if (v === 'NaN') return NaN;
  if (v === 'Infinity') return Infinity;
  if (v === '-Infinity') return -Infinity;
  fe.add(`${field} has value ${JSON.stringify(v)}, expected a JSON number`, where);
  return typeof v === 'string' && v.trim() !== '' && !Number.isNaN(Number(v)) ? Number(v) : v;
}

function str(v, field, fe, where) {
  if (v === undefined || v === null) return '';
  if (typeof v === 'string') return v;
  fe.add(`${field} has JSON type ${typeof v}, expected a string`, where);
  return String(v);
}

function bool(v, field, fe, where) {
  if (v === undefined || v === null) return false;
  if (typeof v === 'boolean') return v;
  fe.add(`${field} has value ${JSON.stringify(v)}, expected true/false`, where);
  return v;
}

function hexId(v, field, bytes, fe, where) {
  if (v === undefined || v === null || v === '') return '';
  if (typeof v !== 'string') {
    fe.add(`${field} has JSON type ${typeof v}, expected a hex string`, where);
    return String(v);
  }
  const re = new RegExp(`^[0-9a-fA-F]{${bytes * 2}}$`);
  if (!re.test(v)) {
    fe.add(`${field} ${JSON.stringify(v)} is not ${bytes * 2} hex digits (OTLP/JSON uses hex, not base64, for ids)`, where);
    return v;
  }
  return v.toLowerCase();
}

// ----------------------------------------------------------------- AnyValue
const ANY_KEYS = ['stringValue', 'boolValue', 'intValue', 'doubleValue', 'arrayValue', 'kvlistValue', 'bytesValue'];

function anyFromFile(v, field, fe, where) {
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) {
    fe.add(`${field} is not an AnyValue object: ${JSON.stringify(v)}`, where);
    return { invalid: v };
  }
  const keys = Object.keys(v);
  if (keys.length === 0) return {};
  if (keys.length > 1) fe.add(`${field} has more than one value field: ${keys.join(',')}`, where);
  const k = keys[0];
  const x = v[k];
  switch (k) {
    case 'stringValue':
      return { stringValue: str(x, `${field}.stringValue`, fe, where) };
    case 'boolValue':
      return { boolValue: bool(x, `${field}.boolValue`, fe, where) };
    case 'intValue':
      return { intValue: i64(x, `${field}.intValue`, fe, where) };
    case 'doubleValue':
      return { doubleValue: dbl(x, `${field}.doubleValue`, fe, where) ?? 0 };
    case 'bytesValue': {
      const s = str(x, `${field}.bytesValue`, fe, where);
      if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(s)) fe.add(`${field}.bytesValue is not base64: ${JSON.stringify(s)}`, where);
      return { bytesValue: Buffer.from(s, 'base64').toString('base64') };
    }
    case 'arrayValue': {
      const vals = x?.values ?? [];
      return { arrayValue: { values: vals.map((e, i) => anyFromFile(e, `${field}.arrayValue.values[${i}]`, fe, where)) } };
    }
    case 'kvlistValue': {
      const vals = x?.values ?? [];
      return {
        kvlistValue: {
          values: vals.map((kv, i) => ({
            key: str(kv?.key, `${field}.kvlistValue.values[${i}].key`, fe, where),
            value: anyFromFile(kv?.value, `${field}.kvlistValue.values[${i}].value`, fe, where),
          })),
        },
      };
    }
    default:
      fe.add(`${field} has unknown field ${JSON.stringify(k)} (expected one of ${ANY_KEYS.join(', ')})`, where);
      return { unknown: v };
  }
}

function attrsFromFile(list, field, fe, where) {
  const out = {};
  if (list === undefined || list === null) return out;
  if (!Array.isArray(list)) {
    fe.add(`${field} is not an array`, where);
    return out;
  }
  for (const kv of list) {
    const key = str(kv?.key, `${field}[].key`, fe, where);
    if (Object.prototype.hasOwnProperty.call(out, key)) fe.add(`${field} has duplicate key ${JSON.stringify(key)}`, where);
    out[key] = canonAnyString(anyFromFile(kv?.value, `${field}[${JSON.stringify(key)}].value`, fe, where));
  }
  const sorted = {};
  for (const k of Object.keys(out).sort()) sorted[k] = out[k];
  return sorted;
}

function resourceFromFile(r, schemaUrl, fe, where) {
  return {
    attributes: attrsFromFile(r?.attributes, 'resource.attributes', fe, where),
    droppedAttributesCount: u32(r?.droppedAttributesCount, 'resource.droppedAttributesCount', fe, where),
    schemaUrl: str(schemaUrl, 'schemaUrl', fe, where),
  };
}

function scopeFromFile(s, schemaUrl, fe, where) {
  return {
    name: str(s?.name, 'scope.name', fe, where),
    version: str(s?.version, 'scope.version', fe, where),
    attributes: attrsFromFile(s?.attributes, 'scope.attributes', fe, where),
    droppedAttributesCount: u32(s?.droppedAttributesCount, 'scope.droppedAttributesCount', fe, where),
    schemaUrl: str(schemaUrl, 'scope schemaUrl', fe, where),
  };
}

function transportOf(resourceCanon) {
  const v = resourceCanon.attributes['e2e.transport'];
  if (!v) return undefined;
  try {
    return JSON.parse(v).stringValue;
  } catch {
    return undefined;
  }
}

// ----------------------------------------------------------------- items
function spanFromFile(s, fe, where) {
  return {
    traceId: hexId(s.traceId, 'span.traceId', 16, fe, where),
    spanId: hexId(s.spanId, 'span.spanId', 8, fe, where),
    parentSpanId: hexId(s.parentSpanId, 'span.parentSpanId', 8, fe, where),
    traceState: str(s.traceState, 'span.traceState', fe, where),
    flags: u32(s.flags, 'span.flags', fe, where),
    name: str(s.name, 'span.name', fe, where),
    kind: enumInt(s.kind, 'span.kind', fe, where),
    startTimeUnixNano: u64(s.startTimeUnixNano, 'span.startTimeUnixNano', fe, where),
    endTimeUnixNano: u64(s.endTimeUnixNano, 'span.endTimeUnixNano', fe, where),
    attributes: attrsFromFile(s.attributes, 'span.attributes', fe, where),
    droppedAttributesCount: u32(s.droppedAttributesCount, 'span.droppedAttributesCount', fe, where),
    events: (s.events ?? []).map((e) => ({
      timeUnixNano: u64(e.timeUnixNano, 'span.events[].timeUnixNano', fe, where),
      name: str(e.name, 'span.events[].name', fe, where),
      attributes: attrsFromFile(e.attributes, 'span.events[].attributes', fe, where),
      droppedAttributesCount: u32(e.droppedAttributesCount, 'span.events[].droppedAttributesCount', fe, where),
    })),
    droppedEventsCount: u32(s.droppedEventsCount, 'span.droppedEventsCount', fe, where),
    links: (s.links ?? []).map((l) => ({
      traceId: hexId(l.traceId, 'span.links[].traceId', 16, fe, where),
      spanId: hexId(l.spanId, 'span.links[].spanId', 8, fe, where),
      traceState: str(l.traceState, 'span.links[].traceState', fe, where),
      attributes: attrsFromFile(l.attributes, 'span.links[].attributes', fe, where),
      droppedAttributesCount: u32(l.droppedAttributesCount, 'span.links[].droppedAttributesCount', fe, where),
      flags: u32(l.flags, 'span.links[].flags', fe, where),
    })),
    droppedLinksCount: u32(s.droppedLinksCount, 'span.droppedLinksCount', fe, where),
    status: {
      code: enumInt(s.status?.code, 'span.status.code', fe, where),
      message: str(s.status?.message, 'span.status.message', fe, where),
    },
  };
}

function logFromFile(l, fe, where) {
  const body = anyFromFile(l.body, 'logRecord.body', fe, where);
  return {
    timeUnixNano: u64(l.timeUnixNano, 'logRecord.timeUnixNano', fe, where),
    observedTimeUnixNano: u64(l.observedTimeUnixNano, 'logRecord.observedTimeUnixNano', fe, where),
    severityNumber: enumInt(l.severityNumber, 'logRecord.severityNumber', fe, where),
    severityText: str(l.severityText, 'logRecord.severityText', fe, where),
    body: Object.keys(body).length ? canonAnyString(body) : undefined,
    eventName: str(l.eventName, 'logRecord.eventName', fe, where),
    attributes: attrsFromFile(l.attributes, 'logRecord.attributes', fe, where),
    droppedAttributesCount: u32(l.droppedAttributesCount, 'logRecord.droppedAttributesCount', fe, where),
    flags: u32(l.flags, 'logRecord.flags', fe, where),
    traceId: hexId(l.traceId, 'logRecord.traceId', 16, fe, where),
    spanId: hexId(l.spanId, 'logRecord.spanId', 8, fe, where),
  };
}

function numberPointFromFile(p, fe, where) {
  const out = {
    attributes: attrsFromFile(p.attributes, 'dataPoint.attributes', fe, where),
    startTimeUnixNano: u64(p.startTimeUnixNano, 'dataPoint.startTimeUnixNano', fe, where),
    timeUnixNano: u64(p.timeUnixNano, 'dataPoint.timeUnixNano', fe, where),
    flags: u32(p.flags, 'dataPoint.flags', fe, where),
  };
  if ('asInt' in p) out.asInt = i64(p.asInt, 'dataPoint.asInt', fe, where);
  if ('asDouble' in p) out.asDouble = dbl(p.asDouble, 'dataPoint.asDouble', fe, where);
  return out;
}

function histogramPointFromFile(p, fe, where) {
  return {
    attributes: attrsFromFile(p.attributes, 'dataPoint.attributes', fe, where),
    startTimeUnixNano: u64(p.startTimeUnixNano, 'dataPoint.startTimeUnixNano', fe, where),
    timeUnixNano: u64(p.timeUnixNano, 'dataPoint.timeUnixNano', fe, where),
    flags: u32(p.flags, 'dataPoint.flags', fe, where),
    count: u64(p.count, 'histogram.count', fe, where),
    sum: dbl(p.sum, 'histogram.sum', fe, where),
    min: dbl(p.min, 'histogram.min', fe, where),
    max: dbl(p.max, 'histogram.max', fe, where),
    bucketCounts: (p.bucketCounts ?? []).map((c) => u64(c, 'histogram.bucketCounts[]', fe, where)),
    explicitBounds: (p.explicitBounds ?? []).map((b) => dbl(b, 'histogram.explicitBounds[]', fe, where)),
  };
}

function checkKeys(obj, fe, where, path = '') {
  if (Array.isArray(obj)) {
    obj.forEach((x) => checkKeys(x, fe, where, `${path}[]`));
    return;
  }
  if (obj === null || typeof obj !== 'object') return;
  for (const k of Object.keys(obj)) {
    if (!/^[a-z][A-Za-z0-9]*$/.test(k)) {
      fe.add(`JSON key ${JSON.stringify(k)} at ${path || '<top>'} is not lowerCamelCase as OTLP/JSON requires`, where);
    }
    checkKeys(obj[k], fe, where, path ? `${path}.${k}` : k);
  }
}

/**
 * Parse the output file. With final=false an incomplete last line is ignored (it may
 * still be being written); with final=true it is an error.
 */
export function parseOutput(file, { final = false } = {}) {
  const fe = new FormatErrors();
  const errors = [];
  const found = { spans: new Map(), logs: new Map(), points: new Map() };
  let text = '';
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if (err.code !== 'ENOENT') errors.push(`cannot read ${file}: ${err.message}`);
    return { found, errors, formatErrors: [], lines: 0, bytes: 0 };
  }
  const parts = text.split('\n');
  const tail = parts.pop();
  if (tail !== '' && final) errors.push(`the file does not end with a newline: last line is incomplete (${tail.length} bytes: ${tail.slice(0, 200)}...)`);
  let lineNo = 0;
  const push = (map, key, item) => {
    const list = map.get(key);
    if (list) list.push(item);
    else map.set(key, [item]);
  };
  for (const line of parts) {
    lineNo++;
    const where = `line ${lineNo}`;
    if (line.trim() === '') {
      errors.push(`${where} is empty`);
      continue;
    }
    let obj;
    try {
      obj = JSON.parse(line);
    } catch (err) {
      errors.push(`${where} is not valid JSON (${err.message}): ${line.slice(0, 300)}`);
      continue;
    }
    if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) {
      errors.push(`${where} is not a JSON object: ${line.slice(0, 300)}`);
      continue;
    }
    checkKeys(obj, fe, where);
    const keys = Object.keys(obj);
    const known = keys.filter((k) => TOP_LEVEL[k]);
    const unknown = keys.filter((k) => !TOP_LEVEL[k]);
    if (unknown.length) errors.push(`${where} has unexpected top-level key(s) ${unknown.join(', ')} (expected exactly one of resourceSpans/resourceMetrics/resourceLogs)`);
    if (known.length !== 1) errors.push(`${where} has ${known.length} of resourceSpans/resourceMetrics/resourceLogs, expected exactly one per line`);

    for (const rs of obj.resourceSpans ?? []) {
      const resource = resourceFromFile(rs.resource, rs.schemaUrl, fe, where);
      const transport = transportOf(resource);
      for (const ss of rs.scopeSpans ?? []) {
        const scope = scopeFromFile(ss.scope, ss.schemaUrl, fe, where);
        for (const s of ss.spans ?? []) {
          const canon = spanFromFile(s, fe, where);
          push(found.spans, `${canon.traceId}/${canon.spanId}`, { transport, canon, resource, scope, where });
        }
      }
    }
    for (const rl of obj.resourceLogs ?? []) {
      const resource = resourceFromFile(rl.resource, rl.schemaUrl, fe, where);
      const transport = transportOf(resource);
      for (const sl of rl.scopeLogs ?? []) {
        const scope = scopeFromFile(sl.scope, sl.schemaUrl, fe, where);
        for (const l of sl.logRecords ?? []) {
          const canon = logFromFile(l, fe, where);
          let id;
          try {
            id = JSON.parse(canon.attributes['e2e.log_id'] ?? '{}').stringValue;
          } catch {
            id = undefined;
          }
          push(found.logs, id ?? `<no e2e.log_id: ${JSON.stringify(canon.body)} at ${where}>`, { transport, canon, resource, scope, where });
        }
      }
    }
    for (const rm of obj.resourceMetrics ?? []) {
      const resource = resourceFromFile(rm.resource, rm.schemaUrl, fe, where);
      const transport = transportOf(resource);
      for (const sm of rm.scopeMetrics ?? []) {
        const scope = scopeFromFile(sm.scope, sm.schemaUrl, fe, where);
        for (const m of sm.metrics ?? []) {
          const metric = {
            name: str(m.name, 'metric.name', fe, where),
            description: str(m.description, 'metric.description', fe, where),
            unit: str(m.unit, 'metric.unit', fe, where),
          };
          const types = ['sum', 'gauge', 'histogram', 'exponentialHistogram', 'summary'].filter((k) => m[k] !== undefined);
          if (types.length !== 1) {
            errors.push(`${where}: metric ${JSON.stringify(metric.name)} has ${types.length} data fields (${types.join(',')}), expected exactly one`);
            continue;
          }
          const type = types[0];
          metric.type = type;
          const data = m[type] ?? {};
          if (type === 'sum') {
            metric.aggregationTemporality = enumInt(data.aggregationTemporality, 'sum.aggregationTemporality', fe, where);
            metric.isMonotonic = bool(data.isMonotonic, 'sum.isMonotonic', fe, where);
          } else if (type === 'histogram') {
            metric.aggregationTemporality = enumInt(data.aggregationTemporality, 'histogram.aggregationTemporality', fe, where);
          }
          for (const p of data.dataPoints ?? []) {
            const canon = type === 'histogram' ? histogramPointFromFile(p, fe, where) : numberPointFromFile(p, fe, where);
            const key = `${transport}|${scope.name}|${metric.name}|${attrsKey(canon.attributes)}`;
            push(found.points, key, { transport, canon, metric, resource, scope, where });
          }
        }
      }
    }
  }
  return { found, errors, formatErrors: fe.list(), lines: lineNo, bytes: text.length };
}

/** True when every expected item is present at least once. */
export function isComplete(expected, found) {
  for (const kind of ['spans', 'logs', 'points']) {
    for (const key of expected[kind].keys()) if (!found[kind].has(key)) return false;
  }
  return true;
}

export function progress(expected, found) {
  const n = (kind) => [...expected[kind].keys()].filter((k) => found[kind].has(k)).length;
  return `spans ${n('spans')}/${expected.spans.size}, log records ${n('logs')}/${expected.logs.size}, metric points ${n('points')}/${expected.points.size}`;
}

/** Full comparison. Returns a list of failure messages (empty = pass). */
export function compare(expected, parsed) {
  const failures = [];
  for (const e of parsed.errors) failures.push(`output file: ${e}`);
  for (const e of parsed.formatErrors) failures.push(`OTLP/JSON encoding: ${e}`);

  // Field differences, grouped so that one systematic bug does not print 75 times.
  const byDetail = new Map();
  const fieldDiff = (label, where, detail) => {
    const g = byDetail.get(detail);
    if (g) g.push(`${label} (${where})`);
    else {
      byDetail.set(detail, [`${label} (${where})`]);
      failures.push({ detail });
    }
  };
  const kinds = [
    ['spans', 'span'],
    ['logs', 'log record'],
    ['points', 'metric point'],
  ];
  for (const [kind, noun] of kinds) {
    const exp = expected[kind];
    const got = parsed.found[kind];
    const missingByTransport = new Map();
    for (const [key, e] of exp) {
      const occ = got.get(key);
      if (!occ) {
        if (!missingByTransport.has(e.transport)) missingByTransport.set(e.transport, []);
        missingByTransport.get(e.transport).push(e.label);
        continue;
      }
      if (occ.length > 1) {
        failures.push(`${e.label}: arrived ${occ.length} times (expected exactly once) at ${occ.map((o) => o.where).join(', ')}`);
      }
      for (const o of occ) {
        const d = [];
        diff('', e.canon, o.canon, d);
        if (e.metric) diff('metric', e.metric, o.metric, d);
        diff('resource', e.resource, o.resource, d);
        diff('scope', e.scope, o.scope, d);
        for (const m of d) fieldDiff(e.label, o.where, m);
      }
    }
    for (const [t, labels] of missingByTransport) {
      const total = [...exp.values()].filter((e) => e.transport === t).length;
      const shown = labels.slice(0, 5).join('; ');
      failures.push(`missing ${labels.length} of ${total} ${noun}s sent over ${t}: ${shown}${labels.length > 5 ? `; ... and ${labels.length - 5} more` : ''}`);
    }
    for (const [key, occ] of got) {
      if (exp.has(key)) continue;
      const o = occ[0];
      failures.push(`unexpected ${noun} in the output (never sent) at ${o.where}: key ${key}, transport ${o.transport ?? '<no e2e.transport resource attribute>'}: ${JSON.stringify(o.canon).slice(0, 400)}`);
    }
  }
  return failures.map((f) => {
    if (typeof f === 'string') return f;
    const items = byDetail.get(f.detail);
    if (items.length === 1) return `${items[0]}: ${f.detail}`;
    return `${items[0]}: ${f.detail}  [same difference in ${items.length} items]`;
  });
}

export function summarize(parsed) {
  const count = (m) => [...m.values()].reduce((a, l) => a + l.length, 0);
  return `${parsed.lines} line(s), ${count(parsed.found.spans)} span(s), ${count(parsed.found.logs)} log record(s), ${count(parsed.found.points)} metric point(s)`;
}
