// Canonical forms shared by the "what the JS SDK sent" side (expect.mjs) and the
// "what otlpd wrote" side (check.mjs), plus a generic field-by-field differ.
//
// Every AnyValue is reduced to a compact, stable JSON string in OTLP/JSON shape
// (intValue as a decimal string, doubleValue as a number, bytesValue as standard
// base64, arrays/kvlists with their element order kept), so that type *and*
// value are compared at once: {"intValue":"5"} != {"doubleValue":5}.

export const SPAN_KIND_NAMES = ['UNSPECIFIED', 'INTERNAL', 'SERVER', 'CLIENT', 'PRODUCER', 'CONSUMER'];
export const STATUS_CODE_NAMES = ['UNSET', 'OK', 'ERROR'];
export const TEMPORALITY_NAMES = ['UNSPECIFIED', 'DELTA', 'CUMULATIVE'];

/**
 * The int64 that reaches the receiver for an integral JS number. Over protobuf it is
 * the number itself; the OTLP/HTTP JSON exporter writes it with JSON.stringify, i.e.
 * the shortest decimal that round-trips the double, so e.g. 2**60 goes on the wire as
 * 1152921504606847000 (not ...976). A receiver must take that decimal exactly.
 */
export function jsIntToWire(value, json) {
  if (json) {
    const text = JSON.stringify(value);
    if (/^-?\d+$/.test(text)) return BigInt(text).toString();
  }
  return BigInt(value).toString();
}

/**
 * Canonical AnyValue object (not yet stringified) from a JS SDK attribute / body value.
 * `json` = the value was sent by the OTLP/HTTP JSON exporter (see jsIntToWire).
 */
export function anyFromJs(value, json = false) {
  if (value === undefined || value === null) return {};
  switch (typeof value) {
    case 'string':
      return { stringValue: value };
    case 'boolean':
      return { boolValue: value };
    case 'number':
      // Same rule as @opentelemetry/otlp-transformer's protobuf writer: integral numbers
      // inside the int64 range are ints, everything else is a double. (Its JSON path
      // would send out-of-range integers as intValue; the test data avoids those.)
      if (Number.isInteger(value) && value >= -(2 ** 63) && value < 2 ** 63) return { intValue: jsIntToWire(value, json) };
      return { doubleValue: value };
    case 'bigint':
      return { intValue: value.toString() };
    default:
      break;
  }
  if (value instanceof Uint8Array) return { bytesValue: Buffer.from(value).toString('base64') };
  if (Array.isArray(value)) return { arrayValue: { values: value.map((v) => anyFromJs(v, json)) } };
  if (typeof value === 'object') {
    return {
      kvlistValue: { values: Object.keys(value).map((k) => ({ key: k, value: anyFromJs(value[k], json) })) },
    };
  }
  return {};
}

export function canonAnyString(obj) {
  return JSON.stringify(obj);
}

/** Attributes map (JS object) -> { key: canonical AnyValue string } */
export function attrsFromJs(attrs, json = false) {
  const out = {};
  for (const k of Object.keys(attrs ?? {})) {
    if (attrs[k] === undefined) continue;
    out[k] = canonAnyString(anyFromJs(attrs[k], json));
  }
  return sortKeys(out);
}

export function sortKeys(obj) {
  const out = {};
  for (const k of Object.keys(obj).sort()) out[k] = obj[k];
  return out;
}

/** HrTime [sec, nanos] -> decimal string of nanoseconds since the epoch. */
export function hrToNanos(hr) {
  if (!hr) return '0';
  return (BigInt(Math.trunc(hr[0])) * 1000000000n + BigInt(Math.trunc(hr[1]))).toString();
}

/** OTLP span flags exactly as @opentelemetry/otlp-transformer builds them. */
export function spanFlags(traceFlags, parentIsRemote) {
  let flags = ((traceFlags ?? 0) & 0xff) | 0x100;
  if (parentIsRemote) flags |= 0x200;
  return flags >>> 0;
}

/** Stable key for an attribute set (used to identify metric points). */
export function attrsKey(canonAttrs) {
  return JSON.stringify(canonAttrs);
}

/** Human-readable attribute set, e.g. {http.route="/a", http.status_code=200}. */
export function attrsLabel(canonAttrs) {
  const parts = Object.entries(canonAttrs).map(([k, v]) => {
    let shown = v;
    try {
      const o = JSON.parse(v);
      const [t] = Object.keys(o);
      if (t === 'stringValue') shown = JSON.stringify(o[t]);
      else if (t === 'intValue' || t === 'doubleValue' || t === 'boolValue') shown = String(o[t]);
    } catch {
      // keep the canonical form
    }
    return `${k}=${shown}`;
  });
  return `{${parts.join(', ')}}`;
}

// ---------------------------------------------------------------------------
// Generic differ: walks expected and actual canonical objects and reports every
// differing leaf as "path: expected X, actual Y".

// Attribute values and log bodies are canonical AnyValue JSON strings: print them as
// JSON rather than as an escaped string.
const ANY_VALUE_PATH = /(attributes\[[^\]]*\]|attributes\.[A-Za-z0-9_]+|(^|\.)body)$/;

function fmt(v, path = '') {
  if (v === undefined) return '<absent>';
  if (typeof v === 'string' && ANY_VALUE_PATH.test(path) && v.startsWith('{')) return v;
  return JSON.stringify(v);
}

function enumName(path, v) {
  if (typeof v !== 'number') return '';
  let names = null;
  if (/(^|\.)kind$/.test(path)) names = SPAN_KIND_NAMES;
  else if (/status\.code$/.test(path)) names = STATUS_CODE_NAMES;
  else if (/aggregationTemporality$/.test(path)) names = TEMPORALITY_NAMES;
  if (names && names[v]) return ` (${names[v]})`;
  if (/flags$/.test(path)) return ` (0x${v.toString(16)})`;
  return '';
}

function joinPath(base, key, isIndex) {
  if (isIndex) return `${base}[${key}]`;
  if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) return base ? `${base}.${key}` : key;
  return `${base}[${JSON.stringify(key)}]`;
}

export function diff(path, expected, actual, out) {
  if (expected === actual) return;
  const eObj = expected !== null && typeof expected === 'object';
  const aObj = actual !== null && typeof actual === 'object';
  if (Array.isArray(expected) && Array.isArray(actual)) {
    if (expected.length !== actual.length) {
      out.push(`${path}: expected ${expected.length} element(s), actual ${actual.length}: expected ${fmt(expected)}, actual ${fmt(actual)}`);
      return;
    }
    for (let i = 0; i < expected.length; i++) diff(joinPath(path, i, true), expected[i], actual[i], out);
    return;
  }
  if (eObj && aObj && !Array.isArray(expected) && !Array.isArray(actual)) {
    const keys = new Set([...Object.keys(expected), ...Object.keys(actual)]);
    for (const k of keys) diff(joinPath(path, k, false), expected[k], actual[k], out);
    return;
  }
  out.push(`${path}: expected ${fmt(expected, path)}${enumName(path, expected)}, actual ${fmt(actual, path)}${enumName(path, actual)}`);
}
