// Shared helpers for the interop tests: start and stop a real `ferry node`, a
// raw WebSocket client with a message queue, assertions and a tiny sequential
// test runner. Every wait is bounded; every process and temp dir is cleaned up,
// on failure too.
//
// Usage: node <file>.test.mjs <path-to-ferry-binary>
import { execFile, spawn } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { isDeepStrictEqual, inspect } from 'node:util'
import WebSocket from 'ws'

export { WebSocket }

// -- the binary --------------------------------------------------------------

export function ferryBinary() {
  // FERRY_TEST_BINARY runs the suite against another build of the node (as
  // for the C++ tests, e.g. the sanitized one).
  const bin = process.env.FERRY_TEST_BINARY || process.argv[2]
  if (!bin || !existsSync(bin)) {
    console.error(`usage: node ${process.argv[1]} <path-to-ferry-binary>` + (bin ? ` (no file ${bin})` : ''))
    process.exit(2)
  }
  return bin
}

// -- small utilities ---------------------------------------------------------

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

export const unixNow = () => Math.floor(Date.now() / 1000)

/** Resolves like `promise`, or rejects with `what timed out` after `ms`. */
export function withTimeout(promise, ms, what) {
  let timer
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

/** Polls `check` (sync or async) until it returns a truthy value, bounded. */
export async function waitFor(check, ms, what, every = 25) {
  const deadline = Date.now() + ms
  for (;;) {
    const value = await check()
    if (value) return value
    if (Date.now() > deadline) throw new Error(`${what}: not reached within ${ms} ms`)
    await sleep(every)
  }
}

/** Shortens a value for an error message. */
export function show(value, max = 600) {
  const text = typeof value === 'string' ? JSON.stringify(value) : inspect(value, { depth: 6, breakLength: Infinity })
  return text.length > max ? text.slice(0, max) + `… (${text.length} chars)` : text
}

// -- assertions --------------------------------------------------------------

export class AssertionError extends Error {}

export function check(condition, what) {
  if (!condition) throw new AssertionError(what)
}

export function equal(actual, expected, what) {
  if (!isDeepStrictEqual(actual, expected))
    throw new AssertionError(`${what}: expected ${show(expected)}, got ${show(actual)}`)
}

export function startsWith(text, prefix, what) {
  if (typeof text !== 'string' || !text.startsWith(prefix))
    throw new AssertionError(`${what}: expected a string starting with ${show(prefix)}, got ${show(text)}`)
}

/** Compares two id lists in order; names the first place they differ. */
export function sameList(actual, expected, what) {
  if (isDeepStrictEqual(actual, expected)) return
  const n = Math.min(actual.length, expected.length)
  let i = 0
  while (i < n && actual[i] === expected[i]) i++
  const missing = expected.filter((x) => !actual.includes(x))
  const extra = actual.filter((x) => !expected.includes(x))
  throw new AssertionError(
    `${what}: got ${actual.length} items, expected ${expected.length}; first difference at index ${i}` +
      ` (got ${show(actual[i])}, expected ${show(expected[i])}); missing ${missing.length}` +
      (missing.length ? ` e.g. ${show(missing.slice(0, 3))}` : '') +
      `; unexpected ${extra.length}` + (extra.length ? ` e.g. ${show(extra.slice(0, 3))}` : ''),
  )
}

/** Compares two id lists as sets (and checks `actual` has no duplicates). */
export function sameSet(actual, expected, what) {
  const dupes = actual.filter((x, i) => actual.indexOf(x) !== i)
  check(dupes.length === 0, `${what}: ${dupes.length} duplicate(s), e.g. ${show(dupes.slice(0, 3))}`)
  sameList([...actual].sort(), [...expected].sort(), what + ' (as a set)')
}

// -- events: the order a relay must serve them in ---------------------------

/** NIP-01: newest first; equal created_at by ascending id. */
export function compareServed(a, b) {
  if (a.created_at !== b.created_at) return b.created_at - a.created_at
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0
}

// -- a ferry node ------------------------------------------------------------

const liveNodes = new Set()
const tempDirs = new Set()

// -- the browser ---------------------------------------------------------------

export const CHROMIUM = process.env.FERRY_CHROMIUM || '/usr/bin/chromium'

/** Fails unless Debian's chromium (or FERRY_CHROMIUM) runs. */
export async function checkChromium() {
  check(existsSync(CHROMIUM),
    `no browser at ${CHROMIUM}: the browser tests need Debian's chromium (scripts/setup installs it; ` +
    'FERRY_CHROMIUM names another binary)')
  const version = await new Promise((done, fail) =>
    execFile(CHROMIUM, ['--version'], { timeout: 20000 }, (err, out) => (err ? fail(err) : done(out))))
  check(/Chromium \d+/.test(version), `chromium --version said ${show(version)}`)
}

/** Runs headless chromium on `url` with `extra` flags; resolves its stdout. */
export function chromium(url, extra) {
  const profile = mkdtempSync(join(tmpdir(), 'ferry-chromium-'))
  // Background networking off: the machine reaches no outside host, and the
  // page must not need one.
  const args = [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--disable-dev-shm-usage', `--user-data-dir=${profile}`, '--virtual-time-budget=4000', ...extra, url,
  ]
  return new Promise((resolvePromise, reject) => {
    execFile(CHROMIUM, args, { timeout: 60000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      rmSync(profile, { recursive: true, force: true })
      if (err) reject(new Error(`chromium failed (${err.message}); stderr tail: ${show(stderr.slice(-1500), 1600)}`))
      else resolvePromise(stdout)
    })
  })
}

/** A temp dir removed when the test file ends, whatever happens. */
export function makeTempDir(prefix = 'ferry-interop-') {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  tempDirs.add(dir)
  return dir
}

function tomlValue(v) {
  return typeof v === 'string' ? JSON.stringify(v) : String(v)
}

/**
 * One `ferry node` on 127.0.0.1 with its own temp dir and config. `start()`
 * and `stop()` may be called again: the data dir stays, the port may change.
 */
export class FerryNode {
  constructor({ binary, limits = {}, relay = {}, sections = {}, name = 'node' } = {}) {
    this.binary = binary
    this.name = name
    this.dir = makeTempDir()
    this.dataDir = join(this.dir, 'data')
    this.configPath = join(this.dir, 'ferry.toml')
    this.logs = [] // stderr lines of every run, for failure reports
    this.proc = null
    this.port = null
    const allLimits = { max_subscriptions: 8, max_filters: 4, max_limit: 5000, ...limits }
    const lines = ['[relay]', 'address = "127.0.0.1"', 'port = PORT']
    for (const [k, v] of Object.entries(relay)) lines.push(`${k} = ${tomlValue(v)}`)
    lines.push('[relay.limits]')
    for (const [k, v] of Object.entries(allLimits)) lines.push(`${k} = ${tomlValue(v)}`)
    // Further sections by name, e.g. { 'relay.negentropy': { max_items: 10 } }.
    for (const [section, values] of Object.entries(sections)) {
      lines.push(`[${section}]`)
      for (const [k, v] of Object.entries(values)) lines.push(`${k} = ${tomlValue(v)}`)
    }
    lines.push('[store]', `path = ${tomlValue(this.dataDir)}`, '[log]', 'level = "info"')
    // The admin and console ports too, so that nodes never collide (ctest -j,
    // a developer's node on the default ports).
    lines.push('[admin]', 'address = "127.0.0.1"', 'port = ADMIN_PORT', '[console]', 'address = "127.0.0.1"', 'port = CONSOLE_PORT', '')
    this.configText = lines.join('\n')
  }

  get url() {
    return `ws://127.0.0.1:${this.port}`
  }

  get httpUrl() {
    return `http://127.0.0.1:${this.port}/`
  }

  get running() {
    return this.proc !== null && this.proc.exitCode === null && this.proc.signalCode === null
  }

  /** Spawns the node and waits (20 s at most) for its listening line. */
  async start() {
    if (this.proc) throw new Error(`${this.name} is already started`)
    // The node picks its port (port = 0) and logs it. FERRY_INTEROP_PICK_PORT=1
    // picks a free port here instead, for a node that does not take port 0.
    const pick = process.env.FERRY_INTEROP_PICK_PORT === '1'
    let text = this.configText
    for (const name of ['PORT', 'ADMIN_PORT', 'CONSOLE_PORT']) text = text.replace(`port = ${name}`, `port = ${pick ? await freePort() : 0}`)
    writeFileSync(this.configPath, text)
    const proc = spawn(this.binary, ['node', '--config', this.configPath], {
      cwd: this.dir,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    this.proc = proc
    this.port = null
    liveNodes.add(this)
    this.stopping = false
    this.exited = new Promise((resolve) => {
      proc.on('exit', (code, signal) => {
        if (!this.stopping) this.logs.push(`[${this.name} exited unexpectedly: code ${code}, signal ${signal}]`)
        resolve({ code, signal })
      })
      proc.on('error', (err) => resolve({ code: null, signal: null, error: err }))
    })
    const listening = new Promise((resolve, reject) => {
      let partial = ''
      const onData = (chunk) => {
        partial += chunk.toString('utf8')
        const lines = partial.split('\n')
        partial = lines.pop()
        for (const line of lines) {
          this.logs.push(line)
          const m = line.match(/relay-server listening on wss?:\/\/127\.0\.0\.1:(\d+)/)
          if (m) resolve(Number(m[1]))
        }
      }
      proc.stderr.on('data', onData)
      proc.stdout.on('data', (chunk) => {
        for (const line of chunk.toString('utf8').split('\n')) if (line) this.logs.push('[stdout] ' + line)
      })
      this.exited.then(({ code, signal, error }) =>
        reject(new Error(`${this.name} exited before listening (code ${code}, signal ${signal}${error ? ', ' + error.message : ''})` +
          `; stderr: ${show(this.logs.slice(-10).join('\n'), 2000)}`)),
      )
    })
    try {
      this.port = await withTimeout(listening, 20000, `${this.name}: waiting for "relay-server listening"`)
    } catch (err) {
      await this.kill()
      throw err
    }
    check(this.port > 0, `${this.name} reported port ${this.port}`)
    return this
  }

  /** SIGTERM, then waits (15 s) for a clean exit: code 0, no signal. */
  async stop() {
    if (!this.proc) return
    const proc = this.proc
    this.stopping = true
    if (this.running) proc.kill('SIGTERM')
    let result
    try {
      result = await withTimeout(this.exited, 15000, `${this.name}: exit after SIGTERM`)
    } catch (err) {
      await this.kill()
      throw err
    }
    this.proc = null
    liveNodes.delete(this)
    if (result.code !== 0)
      throw new AssertionError(`${this.name} exited with code ${result.code}, signal ${result.signal}; ` +
        `stderr tail: ${show(this.logs.slice(-10).join('\n'), 2000)}`)
  }

  /** SIGKILL, for clean-up after a failure; never throws. */
  async kill() {
    const proc = this.proc
    if (!proc) return
    this.stopping = true
    if (this.running) proc.kill('SIGKILL')
    await withTimeout(this.exited, 5000, 'kill').catch(() => {})
    this.proc = null
    liveNodes.delete(this)
  }

  /** Throws when the process died behind our back. */
  assertAlive() {
    check(this.running, `${this.name} is not running (exit code ${this.proc?.exitCode}, signal ${this.proc?.signalCode})`)
  }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
  })
}

function killAllSync() {
  for (const node of liveNodes) {
    try {
      node.proc?.kill('SIGKILL')
    } catch {}
  }
  liveNodes.clear()
  for (const dir of tempDirs) {
    try {
      rmSync(dir, { recursive: true, force: true })
    } catch {}
  }
  tempDirs.clear()
}

process.on('exit', killAllSync)
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, () => {
    killAllSync()
    process.exit(1)
  })
}

// -- a raw WebSocket client --------------------------------------------------

const openClients = new Set()

/**
 * A raw client: `send` takes an array (JSON-encoded) or a string (sent as
 * is); `next(ms)` returns the next message, parsed, in arrival order.
 */
export class RawClient {
  /** `options` go to `ws`; permessage-deflate is not offered unless they say so. */
  static async connect(url, ms = 5000, options = {}) {
    const client = new RawClient(url, options)
    await withTimeout(client.opened, ms, `connecting to ${url}`)
    return client
  }

  constructor(url, options = {}) {
    this.url = url
    this.queue = []
    this.waiters = []
    this.closeInfo = null
    this.ws = new WebSocket(url, { perMessageDeflate: false, ...options })
    openClients.add(this)
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', resolve)
      this.ws.once('error', reject)
    })
    this.opened.catch(() => {})
    this.ws.on('error', () => {}) // reported through 'close'
    this.ws.on('message', (data, isBinary) => {
      const text = data.toString('utf8')
      let msg
      try {
        msg = JSON.parse(text)
      } catch {
        msg = { unparsable: text, binary: isBinary }
      }
      this.queue.push(msg)
      this.wake()
    })
    this.ws.on('close', (code, reason) => {
      this.closeInfo = { code, reason: reason.toString('utf8') }
      openClients.delete(this)
      this.wake()
    })
  }

  wake() {
    const waiters = this.waiters
    this.waiters = []
    for (const w of waiters) w()
  }

  send(message) {
    check(this.ws.readyState === WebSocket.OPEN, `send on a connection that is not open (close ${show(this.closeInfo)})`)
    this.ws.send(typeof message === 'string' ? message : JSON.stringify(message))
  }

  /** The next message; rejects on timeout or when the connection closed. */
  async next(ms = 5000) {
    const deadline = Date.now() + ms
    while (this.queue.length === 0) {
      if (this.closeInfo) throw new Error(`connection closed (code ${this.closeInfo.code} ${show(this.closeInfo.reason)}) while waiting for a message`)
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`no message within ${ms} ms`)
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, left)
        this.waiters.push(() => {
          clearTimeout(timer)
          resolve()
        })
      })
    }
    return this.queue.shift()
  }

  /** Asserts that nothing arrives within `ms`. */
  async expectSilence(ms, what) {
    await sleep(ms)
    check(this.queue.length === 0, `${what}: expected no message, got ${show(this.queue)}`)
  }

  /** Sends `["REQ", id, ...filters]`, returns the events up to EOSE; fails on anything else. */
  async req(subId, filters, ms = 10000) {
    this.send(['REQ', subId, ...filters])
    return this.untilEose(subId, ms)
  }

  async untilEose(subId, ms = 10000) {
    const deadline = Date.now() + ms
    const events = []
    for (;;) {
      const msg = await this.next(Math.max(1, deadline - Date.now()))
      if (msg[0] === 'EVENT' && msg[1] === subId) events.push(msg[2])
      else if (msg[0] === 'EOSE' && msg[1] === subId) return events
      else throw new AssertionError(`REQ ${subId}: unexpected message before EOSE: ${show(msg)}`)
    }
  }

  /** Sends an EVENT and returns its OK as `{ ok, reason }`. */
  async publish(event, ms = 10000) {
    this.send(['EVENT', event])
    const msg = await this.next(ms)
    check(msg[0] === 'OK' && msg[1] === event.id, `EVENT ${event.id}: expected its OK, got ${show(msg)}`)
    check(typeof msg[2] === 'boolean' && typeof msg[3] === 'string', `OK frame is malformed: ${show(msg)}`)
    return { ok: msg[2], reason: msg[3] }
  }

  async close() {
    if (this.closeInfo) return
    const closed = new Promise((resolve) => this.ws.once('close', resolve))
    this.ws.close()
    await withTimeout(closed, 3000, 'closing a connection').catch(() => this.ws.terminate())
    openClients.delete(this)
  }
}

// -- the runner ---------------------------------------------------------------

const tests = []
const afterAll = []

/**
 * Registers a test; tests run in order. `timeout` bounds it (default 30 s).
 * When a `fatal` test fails, the tests after it are not run (and count as
 * failed): they would only repeat its failure.
 */
export function test(name, fn, { timeout = 30000, fatal = false } = {}) {
  tests.push({ name, fn, timeout, fatal })
}

/** Registers clean-up that runs after all tests, failed or not. */
export function cleanup(fn) {
  afterAll.push(fn)
}

/**
 * Runs the tests one by one, prints `ok`/`FAIL` per test and a summary, and
 * exits 1 on any failure. `deadline` bounds the whole file.
 */
export async function run({ deadline = 240000 } = {}) {
  const watchdog = setTimeout(() => {
    console.log(`FAIL - the whole file took longer than ${deadline} ms`)
    console.log(`${passed} passed, ${failed + 1} failed`)
    killAllSync()
    process.exit(1)
  }, deadline)
  let passed = 0
  let failed = 0
  const started = Date.now()
  let blocker = null
  for (const t of tests) {
    const t0 = Date.now()
    if (blocker) {
      failed++
      console.log(`FAIL - ${t.name} (not run: "${blocker}" failed)`)
      continue
    }
    try {
      await withTimeout(Promise.resolve().then(t.fn), t.timeout, `test "${t.name}"`)
      passed++
      console.log(`ok - ${t.name} (${Date.now() - t0} ms)`)
    } catch (err) {
      failed++
      console.log(`FAIL - ${t.name} (${Date.now() - t0} ms)`)
      const text = err instanceof AssertionError ? err.message : err?.stack || String(err)
      for (const line of text.split('\n')) console.log('    ' + line)
      if (t.fatal) blocker = t.name
    }
  }
  for (const fn of afterAll.reverse()) {
    try {
      await withTimeout(Promise.resolve().then(fn), 20000, 'clean-up')
    } catch (err) {
      failed++
      console.log(`FAIL - clean-up: ${err?.message || err}`)
    }
  }
  for (const client of openClients) client.ws.terminate()
  if (failed > 0) {
    for (const node of allNodes) {
      if (node.logs.length === 0) continue
      console.log(`--- ${node.name} stderr (last 30 lines) ---`)
      for (const line of node.logs.slice(-30)) console.log('    ' + line)
    }
  }
  for (const node of [...liveNodes]) await node.kill()
  killAllSync()
  clearTimeout(watchdog)
  console.log(`time: ${((Date.now() - started) / 1000).toFixed(1)} s`)
  console.log(`${passed} passed, ${failed} failed`)
  process.exit(failed > 0 ? 1 : 0)
}

const allNodes = []

/** Creates a node tracked for failure reports (started by the caller). */
export function makeNode(options) {
  const node = new FerryNode(options)
  allNodes.push(node)
  return node
}
