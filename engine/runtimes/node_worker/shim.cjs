// The worker side of the Node.js runtime. engine/runtimes/node.py copies this file into a function's code
// directory (.nimbus/shim.cjs); a sandboxed worker forked by the Python zygote execs
// `node --max-old-space-size=<memory> .nimbus/shim.cjs` inside its sandbox (python_worker/shim.py, `exec`).
//
// Protocol on fd 3 (a connected socket): frames of a 4-byte big-endian length plus UTF-8 JSON.
//   app -> worker  init {handler, env, function_name, function_version, memory_mb, timeout_sec, paths}
//   worker -> app  ready {init_ms} | init_error {error, init_ms}
//   app -> worker  invoke {event, ctx}
//   worker -> app  result {ok, result | error, duration_ms, peak_memory_kb, fatal}
// fds 1 and 2 are the output file the app reads after each invocation (console.* writes to it synchronously).
// Handlers: CommonJS `exports.handler = async (event, context) => ...`, a callback-style
// `(event, context, callback)`, or ESM (`.mjs`, or "type": "module") named or default exports.
'use strict';

const fs = require('fs');
const net = require('net');
const path = require('path');
const { pathToFileURL } = require('url');

const MAX_FRAME = 6 * 1024 * 1024;
const SHIM = __filename;
const CODE_ROOT = path.resolve(__dirname, '..');
const EXTENSIONS = ['.js', '.mjs', '.cjs'];

let handler = null;
let current = null; // the invocation in flight: {resolve} to settle it from a stray error
let functionInfo = {};

// -- framing -------------------------------------------------------------------------------------------

const sock = new net.Socket({ fd: Number(process.env.NIMBUS_FD || 3), readable: true, writable: true });
let pending = Buffer.alloc(0);
let queue = Promise.resolve();

function send(frame) {
  let body;
  try {
    body = Buffer.from(JSON.stringify(frame), 'utf8');
  } catch (err) {
    body = Buffer.from(JSON.stringify(failure({ type: 'SerializationError', message: `result is not JSON-serialisable: ${err.message}`, stack: '' }, frame.duration_ms || 0)), 'utf8');
  }
  if (body.length > MAX_FRAME) {
    const error = { type: 'ResultTooLarge', message: `result is ${body.length} bytes; the limit is ${MAX_FRAME} bytes`, stack: '' };
    body = Buffer.from(JSON.stringify(failure(error, frame.duration_ms || 0)), 'utf8');
  }
  const head = Buffer.alloc(4);
  head.writeUInt32BE(body.length, 0);
  sock.write(Buffer.concat([head, body]));
}

sock.on('data', (chunk) => {
  pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
  while (pending.length >= 4) {
    const size = pending.readUInt32BE(0);
    if (size > MAX_FRAME) process.exit(2);
    if (pending.length < 4 + size) break;
    const body = pending.subarray(4, 4 + size);
    pending = pending.subarray(4 + size);
    let msg;
    try {
      msg = JSON.parse(body.toString('utf8'));
    } catch (err) {
      process.exit(2);
    }
    queue = queue.then(() => dispatch(msg));
  }
});
sock.on('end', () => process.exit(0));
sock.on('error', () => process.exit(0));

async function dispatch(msg) {
  if (msg.t === 'init') return init(msg);
  if (msg.t === 'invoke') return invoke(msg);
  process.exit(0); // exit, or anything unknown
}

// -- errors --------------------------------------------------------------------------------------------

function userStack(err) {
  // The user's frames only: the shim's and Node's internals are cut.
  const stack = err && typeof err.stack === 'string' ? err.stack : '';
  return stack
    .split('\n')
    .filter((line) => !line.includes(SHIM) && !/\(node:internal|at node:internal|\(internal\//.test(line))
    .join('\n');
}

function describe(err) {
  if (err instanceof Error) {
    return { type: err.name || err.constructor.name || 'Error', message: String(err.message), stack: userStack(err) };
  }
  let message;
  try {
    message = typeof err === 'string' ? err : JSON.stringify(err);
  } catch (_) {
    message = String(err);
  }
  return { type: 'Error', message: String(message), stack: '' };
}

function failure(error, duration, fatal = false) {
  return { t: 'result', ok: false, error, duration_ms: duration, peak_memory_kb: peakKb(), fatal };
}

function peakKb() {
  try {
    return process.resourceUsage().maxRSS;
  } catch (_) {
    return null;
  }
}

// A stray error (a rejected promise nobody awaited, a throw in a timer) fails the invocation in flight and
// retires the worker, as Lambda does; with none in flight it is logged and the worker ends.
function stray(kind, err) {
  const error = describe(err);
  if (kind === 'unhandledRejection') error.message = `unhandled promise rejection: ${error.message}`;
  if (current) {
    current.settle({ error, fatal: true });
  } else {
    process.stderr.write(`${kind}: ${error.type}: ${error.message}\n${error.stack}\n`);
    process.exit(1);
  }
}
process.on('uncaughtException', (err) => stray('uncaughtException', err));
process.on('unhandledRejection', (err) => stray('unhandledRejection', err));

// -- init ----------------------------------------------------------------------------------------------

function findModule(moduleName) {
  const base = path.join(CODE_ROOT, moduleName);
  for (const ext of ['', ...EXTENSIONS]) {
    const file = base + ext;
    try {
      if (fs.statSync(file).isFile()) return file;
    } catch (_) {
      // next candidate
    }
  }
  return null;
}

async function load(file) {
  if (file.endsWith('.mjs')) return import(pathToFileURL(file).href);
  try {
    return require(file);
  } catch (err) {
    if (err && err.code === 'ERR_REQUIRE_ESM') return import(pathToFileURL(file).href);
    throw err;
  }
}

async function init(msg) {
  const started = process.hrtime.bigint();
  functionInfo = msg;
  const spec = String(msg.handler || 'index.handler');
  const dot = spec.lastIndexOf('.');
  const moduleName = dot > 0 ? spec.slice(0, dot) : 'index';
  const exportName = dot > 0 ? spec.slice(dot + 1) : spec;
  let error = null;
  try {
    const file = findModule(moduleName);
    if (!file) {
      error = { type: 'HandlerNotFound', message: `module ${JSON.stringify(moduleName)} not found (tried ${EXTENSIONS.map((e) => moduleName + e).join(', ')})`, stack: '' };
    } else {
      const mod = await load(file);
      let fn = mod ? mod[exportName] : undefined;
      if (typeof fn !== 'function' && mod && mod.default && typeof mod.default === 'object') fn = mod.default[exportName];
      if (typeof fn !== 'function' && mod && typeof mod.default === 'function') fn = mod.default;
      if (typeof fn !== 'function') {
        error = { type: 'HandlerNotFound', message: `handler ${JSON.stringify(exportName)} is not exported by ${path.relative(CODE_ROOT, file)}`, stack: '' };
      } else {
        handler = fn;
      }
    }
  } catch (err) {
    error = describe(err);
    if (err instanceof SyntaxError && /export|import/.test(error.message)) {
      error.message += ' (ES module syntax: name the file .mjs, or add a package.json with "type": "module")';
    }
  }
  const initMs = Number(process.hrtime.bigint() - started) / 1e6;
  send(error ? { t: 'init_error', error, init_ms: initMs } : { t: 'ready', init_ms: initMs });
}

// -- invoke --------------------------------------------------------------------------------------------

function makeContext(ctx) {
  const timeoutMs = Number(ctx.timeout_sec || functionInfo.timeout_sec || 30) * 1000;
  const deadline = Date.now() + timeoutMs;
  return {
    requestId: ctx.request_id || '',
    awsRequestId: ctx.request_id || '',
    functionName: functionInfo.function_name || '',
    functionVersion: functionInfo.function_version || '$LATEST',
    memoryLimitInMB: functionInfo.memory_mb || 0,
    source: ctx.source || 'api',
    traceId: ctx.trace_id || '',
    attempt: ctx.attempt || 1,
    deadline,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    logger: console,
  };
}

function invoke(msg) {
  const context = makeContext(msg.ctx || {});
  const started = process.hrtime.bigint();
  const elapsed = () => Number(process.hrtime.bigint() - started) / 1e6;
  return new Promise((resolve) => {
    let done = false;
    const settle = (outcome) => {
      if (done) return;
      done = true;
      current = null;
      const duration = elapsed();
      if (outcome.error) {
        send(failure(outcome.error, duration, Boolean(outcome.fatal)));
      } else {
        const result = outcome.result === undefined ? null : outcome.result;
        send({ t: 'result', ok: true, result, duration_ms: duration, peak_memory_kb: peakKb(), fatal: false });
      }
      resolve();
    };
    current = { settle };
    try {
      let value;
      if (handler.length >= 3) {
        // Callback style: (event, context, callback(err, result)).
        value = new Promise((ok, fail) => {
          const back = handler(msg.event, context, (err, result) => (err ? fail(err) : ok(result)));
          if (back && typeof back.then === 'function') back.then(ok, fail);
        });
      } else {
        value = handler(msg.event, context);
      }
      Promise.resolve(value).then(
        (result) => settle({ result }),
        (err) => settle({ error: describe(err) }),
      );
    } catch (err) {
      settle({ error: describe(err) });
    }
  });
}
