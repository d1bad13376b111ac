// A small third-party NIP-77 relay for testing Ferry's negentropy CLIENT: a
// WebSocket relay over an in-memory set of events (from a JSONL file) that
// answers NEG-OPEN / NEG-MSG / NEG-CLOSE with nostr-tools' negentropy classes
// (nip77.js: NegentropyStorageVector, and Negentropy's bound codec, range
// splitting, fingerprints and frame limit), REQ (stored events, EOSE, then
// the new events that match until CLOSE) and EVENT (verified, kept in
// memory, OK, sent to the matching subscriptions).
//
// nostr-tools 2.25.2's Negentropy.reconcile() only plays the initiator: it
// answers an IdList with a Skip, so a client would never learn the relay's ids
// in that range. `NegentropyResponder` below keeps nostr-tools' class and
// replaces that one round loop with the responder's, as the reference C++
// implementation (hoytech/negentropy, non-initiator) has it: an IdList is
// answered with our own ids, cut at the frame size limit.
//
// CLI:
//   node neg_relay.mjs --events FILE.jsonl [--port 0] [--host 127.0.0.1]
//                      [--frame-size-limit 60000] [--negentropy on|error|notice|silent]
//                      [--arrive-after-neg-open FILE.jsonl] [--max-ids N]
//                      [--refuse-id ID] [--refuse-reason TEXT] [--auth-for-ids]
//                      [--max-subs N] [--max-subs-reason TEXT] [--advertise-limits]
//                      [--answer-delay-ms N] [--ignore-until] [--max-limit N]
//                      [--max-per-req N]
// prints `neg_relay listening on ws://HOST:PORT (N events)` on stdout once it
// listens (port 0: the OS picks one), and runs until SIGTERM/SIGINT.
// --negentropy simulates relays without NIP-77: `error` answers NEG-OPEN with
// NEG-ERR "blocked: ...", `notice` with a NOTICE (as an unknown message type),
// `silent` ignores it. --arrive-after-neg-open: events that reach the relay
// right after it answered the first NEG-OPEN (so that session's item set
// lacks them), as if published then: a client must get them on its live
// subscription. --max-ids: a REQ with a filter of more ids is answered with
// CLOSED "invalid: ids has more than N values", as relays that cap a filter's
// lists do. --refuse-id: a REQ asking for that id is answered with CLOSED and
// --refuse-reason (default "blocked: this event is not served here").
// --auth-for-ids: a REQ by ids from a connection that has not authenticated
// (NIP-42) gets a challenge, only then, and CLOSED "auth-required: ...".
// --max-subs: a REQ beyond N open subscriptions of its connection is answered
// with a NOTICE only and otherwise ignored, as relays did before NIP-01 had
// CLOSED: whoever sent it never hears of it again; with --max-subs-reason it
// is answered with CLOSED and that text instead. The relay answers NIP-11
// requests (Accept: application/nostr+json); with --advertise-limits its
// document names that limit (`limitation.max_subscriptions`).
// --answer-delay-ms: each REQ is answered that long after it arrived (it
// counts towards --max-subs from its arrival), as a remote far away would.
// --ignore-until: stored events are served as if a REQ's filters had no
// since or until, as relays that do not page serve them.
// --max-limit: a filter gets at most N stored events, whatever its limit;
// with --advertise-limits the NIP-11 document names it
// (`limitation.max_limit`). --max-per-req: a REQ gets at most N stored
// events over all its filters, answered in their order, as relays that cap
// a whole REQ rather than each filter do (a later filter may get none).
//
// As a module: `startNegRelay({ events, port, host, frameSizeLimit, negentropy, arriving,
// maxIds, refuseId, refuseReason, authForIds, maxSubs, maxSubsReason, advertiseLimits,
// answerDelayMs, ignoreUntil, maxLimit, maxPerReq })`
// resolves to `{ url, port, events, close() }`.
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { fileURLToPath } from 'node:url'
import { matchFilter } from 'nostr-tools/filter'
import { verifyEvent } from 'nostr-tools/pure'
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js'
import { WebSocketServer } from 'ws'
import { Negentropy, NegentropyStorageVector } from './node_modules/nostr-tools/lib/esm/nip77.js'

const PROTOCOL_VERSION = 0x61
const Mode = { Skip: 0, Fingerprint: 1, IdList: 2 }

// -- bytes: the buffer interface nip77.js's encode/decode helpers expect -----

class Bytes {
  constructor(bytes = new Uint8Array(0)) {
    this.raw = Uint8Array.from(bytes)
    this.start = 0
  }
  get length() {
    return this.raw.length - this.start
  }
  unwrap() {
    return this.raw.subarray(this.start)
  }
  extend(buf) {
    const more = typeof buf.unwrap === 'function' ? buf.unwrap() : Uint8Array.from(buf)
    const next = new Uint8Array(this.length + more.length)
    next.set(this.unwrap())
    next.set(more, this.length)
    this.raw = next
    this.start = 0
  }
  shift() {
    if (this.length < 1) throw Error('parse ends prematurely')
    return this.raw[this.start++]
  }
  shiftN(n) {
    if (this.length < n) throw Error('parse ends prematurely')
    const out = this.raw.subarray(this.start, this.start + n)
    this.start += n
    return out
  }
}

function encodeVarInt(n) {
  const digits = []
  do {
    digits.unshift(n % 128)
    n = Math.floor(n / 128)
  } while (n > 0)
  for (let i = 0; i < digits.length - 1; i++) digits[i] |= 0x80
  return new Bytes(digits)
}

function decodeVarInt(buf) {
  let n = 0
  for (;;) {
    const byte = buf.shift()
    n = n * 128 + (byte & 0x7f)
    if (n > Number.MAX_SAFE_INTEGER) throw Error('varint too large')
    if ((byte & 0x80) === 0) return n
  }
}

function sameBytes(a, b) {
  return a.length === b.length && a.every((x, i) => x === b[i])
}

// -- the responder -----------------------------------------------------------------

export class NegentropyResponder extends Negentropy {
  /** Answers one hex query with a hex response (the reference's non-initiator round). */
  respond(queryHex) {
    const query = new Bytes(hexToBytes(queryHex))
    this.lastTimestampIn = this.lastTimestampOut = 0
    const out = new Bytes([PROTOCOL_VERSION])
    const version = query.shift()
    if (version < 0x60 || version > 0x6f) throw Error('invalid negentropy protocol version byte')
    if (version !== PROTOCOL_VERSION) return bytesToHex(out.unwrap())
    const size = this.storage.size()
    let prevBound = this._bound(0)
    let prevIndex = 0
    let skip = false
    while (query.length !== 0) {
      let o = new Bytes()
      const doSkip = () => {
        if (skip) {
          skip = false
          o.extend(this.encodeBound(prevBound))
          o.extend(encodeVarInt(Mode.Skip))
        }
      }
      const currBound = this.decodeBound(query)
      const mode = decodeVarInt(query)
      const lower = prevIndex
      let upper = this.storage.findLowerBound(prevIndex, size, currBound)
      if (mode === Mode.Skip) {
        skip = true
      } else if (mode === Mode.Fingerprint) {
        const theirs = query.shiftN(16)
        if (!sameBytes(theirs, this.storage.fingerprint(lower, upper))) {
          doSkip()
          this.splitRange(lower, upper, currBound, o)
        } else {
          skip = true
        }
      } else if (mode === Mode.IdList) {
        // Their ids are not needed to answer: the client compares.
        query.shiftN(32 * decodeVarInt(query))
        doSkip()
        const ids = []
        let endBound = currBound
        this.storage.iterate(lower, upper, (item, index) => {
          if (this.exceededFrameSizeLimit(out.length + o.length + 32 * ids.length)) {
            endBound = { timestamp: item.timestamp, id: item.id }
            upper = index
            return false
          }
          ids.push(item.id)
          return true
        })
        o.extend(this.encodeBound(endBound))
        o.extend(encodeVarInt(Mode.IdList))
        o.extend(encodeVarInt(ids.length))
        for (const id of ids) o.extend(id)
        out.extend(o)
        o = new Bytes()
      } else {
        throw Error('unexpected mode')
      }
      if (this.exceededFrameSizeLimit(out.length + o.length)) {
        out.extend(this.encodeBound(this._bound(Number.MAX_VALUE)))
        out.extend(encodeVarInt(Mode.Fingerprint))
        out.extend(this.storage.fingerprint(upper, size))
        break
      }
      out.extend(o)
      prevIndex = upper
      prevBound = currBound
    }
    return bytesToHex(out.unwrap())
  }
}

// -- the relay --------------------------------------------------------------------

/** NIP-01 order: newest first, ties by id. */
function served(a, b) {
  return b.created_at - a.created_at || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)
}

export function loadEvents(file) {
  const events = new Map()
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line.trim()) continue
    const event = JSON.parse(line)
    events.set(event.id, event)
  }
  return events
}

export function startNegRelay({ events = new Map(), port = 0, host = '127.0.0.1', frameSizeLimit = 60000, negentropy = 'on', arriving = new Map(), maxIds = 0, refuseId = '', refuseReason = 'blocked: this event is not served here', authForIds = false, maxSubs = 0, maxSubsReason = '', advertiseLimits = false, answerDelayMs = 0, ignoreUntil = false, maxLimit = 0, maxPerReq = 0 } = {}) {
  const http = createServer((req, res) => {
    if (!(req.headers.accept ?? '').includes('application/nostr+json')) {
      res.writeHead(426, { 'Content-Type': 'text/plain' })
      return res.end('a WebSocket relay\n')
    }
    const limitation = {}
    if (advertiseLimits && maxSubs > 0) limitation.max_subscriptions = maxSubs
    if (advertiseLimits && maxLimit > 0) limitation.max_limit = maxLimit
    res.writeHead(200, { 'Content-Type': 'application/nostr+json', 'Access-Control-Allow-Origin': '*' })
    res.end(JSON.stringify({ name: 'neg_relay', supported_nips: [1, 11, 42, 77], limitation }))
  })
  const wss = new WebSocketServer({ server: http, perMessageDeflate: false, maxPayload: 16 << 20 })
  // Every connection's open subscriptions: subscription id -> filters.
  const live = new Set()
  const store = (event) => {
    events.set(event.id, event)
    for (const { ws, subs } of live)
      for (const [subId, filters] of subs)
        if (filters.some((f) => matchFilter(f, event))) ws.send(JSON.stringify(['EVENT', subId, event]))
  }
  wss.on('connection', (ws) => {
    const sessions = new Map()
    const subs = new Map()
    // NIP-42: the challenge this connection was sent, and whether it answered.
    let challenge = ''
    let authenticated = false
    const listener = { ws, subs }
    live.add(listener)
    ws.on('close', () => live.delete(listener))
    const send = (msg) => ws.send(JSON.stringify(msg))
    ws.on('message', (data) => {
      let msg
      try {
        msg = JSON.parse(data.toString('utf8'))
        if (!Array.isArray(msg)) throw Error('not an array')
      } catch {
        return send(['NOTICE', 'invalid: a message must be a JSON array'])
      }
      const [verb, subId] = msg
      try {
        switch (verb) {
          case 'REQ': {
            const filters = msg.slice(2)
            if (maxSubs > 0 && !subs.has(subId) && subs.size >= maxSubs)
              return send(maxSubsReason ? ['CLOSED', subId, maxSubsReason]
                : ['NOTICE', `error: too many concurrent REQs (at most ${maxSubs})`])
            if (maxIds > 0 && filters.some((f) => (f.ids?.length ?? 0) > maxIds))
              return send(['CLOSED', subId, `invalid: ids has more than ${maxIds} values`])
            if (refuseId && filters.some((f) => f.ids?.includes(refuseId)))
              return send(['CLOSED', subId, refuseReason])
            if (authForIds && !authenticated && filters.some((f) => f.ids)) {
              if (!challenge) {
                challenge = randomBytes(16).toString('hex')
                send(['AUTH', challenge])
              }
              return send(['CLOSED', subId, 'auth-required: authenticate to fetch by id'])
            }
            subs.set(subId, filters)
            const answer = () => {
              let left = maxPerReq > 0 ? maxPerReq : Infinity
              for (const filter of filters) {
                const matched = ignoreUntil ? { ...filter, since: undefined, until: undefined } : filter
                const hits = [...events.values()].filter((e) => matchFilter(matched, e)).sort(served)
                const most = Math.min(filter.limit ?? hits.length, maxLimit > 0 ? maxLimit : hits.length, left)
                for (const e of hits.slice(0, most)) send(['EVENT', subId, e])
                left -= most
              }
              send(['EOSE', subId])
            }
            if (answerDelayMs > 0) return setTimeout(answer, answerDelayMs)
            return answer()
          }
          case 'CLOSE':
            subs.delete(subId)
            return
          case 'AUTH': {
            const event = msg[1]
            const answers = event && typeof event === 'object' && event.kind === 22242 &&
              challenge && event.tags?.some((t) => t[0] === 'challenge' && t[1] === challenge) &&
              verifyEvent(event)
            if (answers) authenticated = true
            return send(['OK', event?.id ?? '', Boolean(answers), answers ? '' : 'invalid: not an answer to our challenge'])
          }
          case 'EVENT': {
            const event = msg[1]
            if (!event || typeof event !== 'object' || !verifyEvent(event))
              return send(['OK', event?.id ?? '', false, 'invalid: bad id or signature'])
            const duplicate = events.has(event.id)
            if (!duplicate) store(event)
            return send(['OK', event.id, true, duplicate ? 'duplicate: already have it' : ''])
          }
          case 'NEG-OPEN': {
            if (negentropy === 'silent') return
            if (negentropy === 'notice') return send(['NOTICE', `invalid: unknown message type "${verb}"`])
            if (negentropy === 'error') return send(['NEG-ERR', subId, 'blocked: negentropy is disabled on this relay'])
            const storage = new NegentropyStorageVector()
            for (const e of events.values()) if (matchFilter(msg[2], e)) storage.insert(e.created_at, e.id)
            storage.seal()
            const neg = new NegentropyResponder(storage, frameSizeLimit)
            sessions.set(subId, neg)
            send(['NEG-MSG', subId, neg.respond(msg[3])])
            for (const event of arriving.values()) store(event)
            arriving.clear()
            return
          }
          case 'NEG-MSG': {
            const neg = sessions.get(subId)
            if (!neg) return send(['NEG-ERR', subId, 'closed: no such negentropy session'])
            return send(['NEG-MSG', subId, neg.respond(msg[2])])
          }
          case 'NEG-CLOSE':
            sessions.delete(subId)
            return
          default:
            return send(['NOTICE', `invalid: unknown message type ${JSON.stringify(verb)}`])
        }
      } catch (err) {
        if (verb === 'NEG-OPEN' || verb === 'NEG-MSG') {
          sessions.delete(subId)
          return send(['NEG-ERR', subId, `invalid: ${err.message}`])
        }
        return send(['NOTICE', `error: ${err.message}`])
      }
    })
  })
  return new Promise((resolve, reject) => {
    http.once('error', reject)
    http.listen(port, host, () => {
      const actual = http.address().port
      resolve({
        url: `ws://${host}:${actual}`,
        port: actual,
        events,
        close: () => new Promise((done) => {
          for (const client of wss.clients) client.terminate()
          wss.close(() => http.close(() => done()))
        }),
      })
    })
  })
}

// -- CLI ------------------------------------------------------------------------------

function parseArgs(argv) {
  const opts = { port: 0, host: '127.0.0.1', frameSizeLimit: 60000, negentropy: 'on', arriving: '', maxIds: 0, refuseId: '', refuseReason: 'blocked: this event is not served here', authForIds: false, maxSubs: 0, maxSubsReason: '', advertiseLimits: false, answerDelayMs: 0, ignoreUntil: false, maxLimit: 0, maxPerReq: 0 }
  const usage = (why) => {
    console.error(`${why}\nusage: node neg_relay.mjs --events FILE.jsonl [--port 0] [--host 127.0.0.1] ` +
      '[--frame-size-limit 60000] [--negentropy on|error|notice|silent] [--arrive-after-neg-open FILE.jsonl] ' +
      '[--max-ids N] [--refuse-id ID] [--refuse-reason TEXT] [--auth-for-ids] [--max-subs N] [--max-subs-reason TEXT] [--advertise-limits] ' +
      '[--answer-delay-ms N] [--ignore-until] [--max-limit N] [--max-per-req N]')
    process.exit(2)
  }
  for (let i = 0; i < argv.length; i += 2) {
    const switches = { '--auth-for-ids': 'authForIds', '--advertise-limits': 'advertiseLimits', '--ignore-until': 'ignoreUntil' }
    if (switches[argv[i]]) {
      opts[switches[argv[i]]] = true
      i -= 1
      continue
    }
    const [flag, value] = [argv[i], argv[i + 1]]
    if (value === undefined) usage(`${flag} needs a value`)
    if (flag === '--events') opts.events = value
    else if (flag === '--port') opts.port = Number(value)
    else if (flag === '--host') opts.host = value
    else if (flag === '--frame-size-limit') opts.frameSizeLimit = Number(value)
    else if (flag === '--negentropy') opts.negentropy = value
    else if (flag === '--arrive-after-neg-open') opts.arriving = value
    else if (flag === '--max-ids') opts.maxIds = Number(value)
    else if (flag === '--refuse-id') opts.refuseId = value
    else if (flag === '--refuse-reason') opts.refuseReason = value
    else if (flag === '--max-subs') opts.maxSubs = Number(value)
    else if (flag === '--max-subs-reason') opts.maxSubsReason = value
    else if (flag === '--answer-delay-ms') opts.answerDelayMs = Number(value)
    else if (flag === '--max-limit') opts.maxLimit = Number(value)
    else if (flag === '--max-per-req') opts.maxPerReq = Number(value)
    else usage(`unknown option ${flag}`)
  }
  if (!opts.events) usage('--events is required')
  if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) usage('--port must be 0..65535')
  if (!Number.isInteger(opts.frameSizeLimit) || opts.frameSizeLimit < 4096) usage('--frame-size-limit must be an integer >= 4096')
  if (!['on', 'error', 'notice', 'silent'].includes(opts.negentropy)) usage('--negentropy must be on, error, notice or silent')
  if (!Number.isInteger(opts.maxIds) || opts.maxIds < 0) usage('--max-ids must be an integer >= 0')
  if (!Number.isInteger(opts.maxSubs) || opts.maxSubs < 0) usage('--max-subs must be an integer >= 0')
  if (!Number.isInteger(opts.answerDelayMs) || opts.answerDelayMs < 0) usage('--answer-delay-ms must be an integer >= 0')
  if (!Number.isInteger(opts.maxLimit) || opts.maxLimit < 0) usage('--max-limit must be an integer >= 0')
  if (!Number.isInteger(opts.maxPerReq) || opts.maxPerReq < 0) usage('--max-per-req must be an integer >= 0')
  if (opts.refuseId && !/^[0-9a-f]{64}$/.test(opts.refuseId)) usage('--refuse-id must be 64 lowercase hex digits')
  return opts
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const opts = parseArgs(process.argv.slice(2))
  const events = loadEvents(opts.events)
  const arriving = opts.arriving ? loadEvents(opts.arriving) : new Map()
  const relay = await startNegRelay({ ...opts, events, arriving })
  console.log(`neg_relay listening on ${relay.url} (${events.size} events)`)
  const stop = async () => {
    await relay.close()
    process.exit(0)
  }
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
}
