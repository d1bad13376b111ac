// NIP-77 negentropy with nostr-tools' nip77 as the CLIENT against a real
// `ferry node`: the have/need sets come out exact for 0%, 1%, 50% and 100%
// overlap; bad NEG-* input gets NEG-ERR with the right prefix and the
// connection keeps working; limits, idle timeout and NIP-11.
//
// Run: node negentropy.test.mjs <path-to-ferry-binary>
import { finalizeEvent, generateSecretKey, getPublicKey } from 'nostr-tools/pure'
import { Relay, useWebSocketImplementation } from 'nostr-tools/relay'
// nip77 is not in the package's export map; it is imported by file.
import { Negentropy, NegentropyStorageVector, NegentropySync } from './node_modules/nostr-tools/lib/esm/nip77.js'
import { bytesToHex } from '@noble/hashes/utils.js'
import { randomBytes } from 'node:crypto'
import {
  RawClient, WebSocket, check, cleanup, equal, ferryBinary, makeNode, run, sameSet, show, startsWith, test, unixNow,
  withTimeout,
} from './lib.mjs'

useWebSocketImplementation(WebSocket)

const binary = ferryBinary()

const MAX_ITEMS = 1500
const MAX_SESSIONS = 3
const IDLE_SECONDS = 2
const node = makeNode({
  binary,
  name: 'negentropy-node',
  sections: {
    'relay.negentropy': {
      max_items: MAX_ITEMS,
      max_sessions_per_connection: MAX_SESSIONS,
      idle_timeout_seconds: IDLE_SECONDS,
      frame_size_limit: 8192,
    },
  },
})
const disabled = makeNode({ binary, name: 'negentropy-disabled-node', sections: { 'relay.negentropy': { enabled: false } } })

const sk = generateSecretKey()
const pk = getPublicKey(sk)
const base = unixNow() - 100000

/** Ferry's kind-1 events (the set reconciled) and kind-7 extras (only there to pass max_items). */
const notes = []
const reactions = []

const clients = []
async function client(target = node) {
  const c = await RawClient.connect(target.url)
  clients.push(c)
  return c
}
cleanup(async () => {
  for (const c of clients) await c.close()
})

function sign(kind, i) {
  // Many events share a second, so bounds need id prefixes.
  return finalizeEvent({ kind, created_at: base + (i % 250), tags: [], content: `${kind}/${i}` }, sk)
}

/** Publishes without waiting per event, then collects every OK. */
async function publishAll(c, events) {
  for (const e of events) c.send(['EVENT', e])
  const pending = new Set(events.map((e) => e.id))
  while (pending.size > 0) {
    const msg = await c.next(10000)
    check(msg[0] === 'OK' && pending.has(msg[1]) && msg[2] === true, `publishing: unexpected ${show(msg)}`)
    pending.delete(msg[1])
  }
}

function randomId() {
  return bytesToHex(randomBytes(32))
}

/**
 * Runs nostr-tools' Negentropy as the initiator over a raw connection until
 * it has nothing left to ask; returns the ids it reported and the rounds.
 */
async function reconcile(c, subId, filter, items) {
  const storage = new NegentropyStorageVector()
  for (const { created_at, id } of items) storage.insert(created_at, id)
  storage.seal()
  const neg = new Negentropy(storage)
  const have = []
  const need = []
  let rounds = 0
  c.send(['NEG-OPEN', subId, filter, neg.initiate()])
  for (;;) {
    const msg = await c.next(10000)
    check(msg[0] === 'NEG-MSG' && msg[1] === subId, `round ${rounds}: expected NEG-MSG ${subId}, got ${show(msg)}`)
    rounds++
    const next = neg.reconcile(msg[2], (id) => have.push(id), (id) => need.push(id))
    if (next === null) break
    c.send(['NEG-MSG', subId, next])
  }
  c.send(['NEG-CLOSE', subId])
  return { have, need, rounds }
}

async function expectNegErr(c, subId, prefix, what) {
  const msg = await c.next(5000)
  check(msg[0] === 'NEG-ERR' && msg[1] === subId && typeof msg[2] === 'string',
    `${what}: expected ["NEG-ERR",${JSON.stringify(subId)},"${prefix} ..."], got ${show(msg)}`)
  startsWith(msg[2], prefix, `${what}: NEG-ERR reason`)
  return msg[2]
}

/** The connection still answers a REQ. */
async function stillWorks(c, what) {
  const events = await c.req(`alive-${Math.random()}`, [{ ids: [notes[0].id] }])
  equal(events.map((e) => e.id), [notes[0].id], `${what}: REQ after it`)
}

// A valid first message, for the error cases that need one.
function emptyInitiate() {
  const storage = new NegentropyStorageVector()
  storage.seal()
  return new Negentropy(storage).initiate()
}

// -- tests ----------------------------------------------------------------------

test('the nodes start and ferry holds the seeded events', async () => {
  await node.start()
  await disabled.start()
  for (let i = 0; i < 1200; i++) notes.push(sign(1, i))
  for (let i = 0; i < 400; i++) reactions.push(sign(7, i))
  const c = await client()
  await publishAll(c, [...notes, ...reactions])
}, { fatal: true, timeout: 60000 })

for (const overlap of [0, 0.01, 0.5, 1]) {
  test(`nostr-tools reconciles with ${overlap * 100}% overlap: have and need are exact`, async () => {
    const c = await client()
    const shared = notes.slice(0, Math.round(notes.length * overlap))
    // Ids only the client holds (never published): they must come back as "have".
    const mine = Array.from({ length: 40 }, (_, i) => ({ created_at: base + (i * 7) % 250, id: randomId() }))
    const result = await reconcile(c, `neg-${overlap}`, { kinds: [1] }, [...shared, ...mine])
    sameSet(result.need, notes.slice(shared.length).map((e) => e.id), 'need (on ferry, not here)')
    sameSet(result.have, mine.map((x) => x.id), 'have (here, not on ferry)')
    // The ids ferry named are real: a REQ by ids fetches exactly them.
    if (result.need.length > 0 && result.need.length <= 500) {
      const fetched = await c.req(`fetch-${overlap}`, [{ ids: result.need, limit: result.need.length }])
      sameSet(fetched.map((e) => e.id), result.need, 'events fetched by the needed ids')
    }
  })
}

test('the filter is honoured: since/until and a limit narrow the set', async () => {
  const c = await client()
  const since = base + 100
  const until = base + 149
  const inWindow = notes.filter((e) => e.created_at >= since && e.created_at <= until)
  const r = await reconcile(c, 'window', { kinds: [1], since, until }, [])
  sameSet(r.need, inWindow.map((e) => e.id), 'need for a since/until window')
  // A limit selects the newest `limit` events, as a REQ would.
  const newest = [...notes].sort((a, b) => b.created_at - a.created_at || (a.id < b.id ? -1 : 1)).slice(0, 30)
  const limited = await reconcile(c, 'limited', { kinds: [1], limit: 30 }, [])
  sameSet(limited.need, newest.map((e) => e.id), 'need with limit 30')
})

test("nostr-tools' NegentropySync over its Relay class completes", async () => {
  const relay = await withTimeout(Relay.connect(node.url, { enablePing: false }), 5000, `Relay.connect(${node.url})`)
  try {
    const storage = new NegentropyStorageVector()
    for (const e of notes.slice(0, 600)) storage.insert(e.created_at, e.id)
    storage.seal()
    const have = []
    const need = []
    let sync
    const closed = new Promise((resolve) => {
      sync = new NegentropySync(relay, storage, { kinds: [1] }, {
        onhave: (id) => have.push(id),
        onneed: (id) => need.push(id),
        onclose: (reason) => resolve(reason),
      })
    })
    await sync.start()
    const reason = await withTimeout(closed, 10000, 'NegentropySync finishing')
    equal(reason, undefined, 'NegentropySync close reason')
    sameSet(need, notes.slice(600).map((e) => e.id), 'NegentropySync need')
    equal(have, [], 'NegentropySync have')
  } finally {
    relay.close()
  }
})

test('a filter matching more than max_items is refused with blocked:, naming the limit', async () => {
  const c = await client()
  c.send(['NEG-OPEN', 'big', {}, emptyInitiate()])
  const reason = await expectNegErr(c, 'big', 'blocked:', 'NEG-OPEN over max_items')
  check(reason.includes(String(MAX_ITEMS)), `the reason names the limit ${MAX_ITEMS}: ${show(reason)}`)
  await stillWorks(c, 'over max_items')
  // Narrowed, the same events reconcile.
  const r = await reconcile(c, 'big', { kinds: [1, 7], since: base + 200 }, [])
  equal(r.need.length, [...notes, ...reactions].filter((e) => e.created_at >= base + 200).length, 'need once narrowed')
})

test('bad NEG-OPEN input gets NEG-ERR invalid: and the connection keeps working', async () => {
  const c = await client()
  const init = emptyInitiate()
  c.send(['NEG-OPEN', 'f', { kinds: 'one' }, init])
  await expectNegErr(c, 'f', 'invalid:', 'a bad filter')
  c.send(['NEG-OPEN', 'f', { kinds: [1] }, 'not hex!'])
  await expectNegErr(c, 'f', 'invalid:', 'a message that is not hex')
  c.send(['NEG-OPEN', 'f', { kinds: [1] }, '61A'])
  await expectNegErr(c, 'f', 'invalid:', 'odd-length hex')
  c.send(['NEG-OPEN', 'f', { kinds: [1] }, '00'])
  await expectNegErr(c, 'f', 'invalid:', 'a first byte that is no negentropy version')
  c.send(['NEG-OPEN', 'f', { kinds: [1] }, '6100'])
  await expectNegErr(c, 'f', 'invalid:', 'a truncated range')
  c.send(['NEG-OPEN', 'f', { kinds: [1] }])
  await expectNegErr(c, 'f', 'invalid:', 'no message')
  c.send(['NEG-OPEN', 'f', { kinds: [1] }, init, 'extra'])
  await expectNegErr(c, 'f', 'invalid:', 'an extra element')
  c.send(['NEG-OPEN', 'x'.repeat(65), { kinds: [1] }, init])
  await expectNegErr(c, 'x'.repeat(65), 'invalid:', 'a subscription id over the limit')
  c.send(['NEG-OPEN'])
  const notice = await c.next(5000)
  check(notice[0] === 'NOTICE' && notice[1].startsWith('invalid:'), `NEG-OPEN without an id: expected a NOTICE, got ${show(notice)}`)
  await stillWorks(c, 'bad NEG-OPEN input')
})

test('another negentropy version is answered with ours (0x61)', async () => {
  const c = await client()
  c.send(['NEG-OPEN', 'v2', { kinds: [1] }, '62aabbcc'])
  const msg = await c.next(5000)
  equal(msg, ['NEG-MSG', 'v2', '61'], 'answer to a version-2 message')
  c.send(['NEG-CLOSE', 'v2'])
  await stillWorks(c, 'another version')
})

test('NEG-MSG for an unknown, closed or failed session gets NEG-ERR closed:', async () => {
  const c = await client()
  c.send(['NEG-MSG', 'nobody', '61'])
  await expectNegErr(c, 'nobody', 'closed:', 'NEG-MSG without NEG-OPEN')
  // Open, then close: the next NEG-MSG finds nothing.
  c.send(['NEG-OPEN', 'once', { kinds: [1] }, emptyInitiate()])
  const first = await c.next(5000)
  equal(first[0], 'NEG-MSG', 'the open session answers')
  c.send(['NEG-CLOSE', 'once'])
  c.send(['NEG-MSG', 'once', '61'])
  await expectNegErr(c, 'once', 'closed:', 'NEG-MSG after NEG-CLOSE')
  // A round that fails ends the session.
  c.send(['NEG-OPEN', 'broken', { kinds: [1] }, emptyInitiate()])
  equal((await c.next(5000))[0], 'NEG-MSG', 'the second session answers')
  c.send(['NEG-MSG', 'broken', '61ff'])
  await expectNegErr(c, 'broken', 'invalid:', 'a malformed NEG-MSG')
  c.send(['NEG-MSG', 'broken', '61'])
  await expectNegErr(c, 'broken', 'closed:', 'NEG-MSG after a NEG-ERR')
  await stillWorks(c, 'unknown sessions')
})

test('too many sessions on one connection: NEG-ERR blocked:, and a freed slot is usable', async () => {
  const c = await client()
  const init = emptyInitiate()
  for (let i = 0; i < MAX_SESSIONS; i++) {
    c.send(['NEG-OPEN', `s${i}`, { kinds: [1] }, init])
    equal((await c.next(5000)).slice(0, 2), ['NEG-MSG', `s${i}`], `session ${i} opens`)
  }
  c.send(['NEG-OPEN', 'one-too-many', { kinds: [1] }, init])
  const reason = await expectNegErr(c, 'one-too-many', 'blocked:', 'a session over the limit')
  check(reason.includes(String(MAX_SESSIONS)), `the reason names the limit: ${show(reason)}`)
  // Re-opening an open id replaces it and needs no new slot.
  c.send(['NEG-OPEN', 's0', { kinds: [1] }, init])
  equal((await c.next(5000)).slice(0, 2), ['NEG-MSG', 's0'], 're-opening s0')
  c.send(['NEG-CLOSE', 's1'])
  c.send(['NEG-OPEN', 'one-too-many', { kinds: [1] }, init])
  equal((await c.next(5000)).slice(0, 2), ['NEG-MSG', 'one-too-many'], 'a session after a NEG-CLOSE')
  await stillWorks(c, 'too many sessions')
})

test('negentropy ids are apart from REQ ids', async () => {
  const c = await client()
  c.send(['REQ', 'same', { ids: [notes[1].id] }])
  c.send(['NEG-OPEN', 'same', { kinds: [1] }, emptyInitiate()])
  const got = [await c.next(5000), await c.next(5000), await c.next(5000)]
  const kinds = got.map((m) => m[0]).sort()
  equal(kinds, ['EOSE', 'EVENT', 'NEG-MSG'], 'a REQ and a NEG-OPEN with one id both answer')
  // CLOSE ends the REQ only; the negentropy session goes on.
  c.send(['CLOSE', 'same'])
  c.send(['NEG-MSG', 'same', '61'])
  equal(await c.next(5000), ['NEG-MSG', 'same', '61'], 'the session after CLOSE of the REQ with its id')
})

test('an idle session is closed with NEG-ERR closed:', async () => {
  const c = await client()
  c.send(['NEG-OPEN', 'idle', { kinds: [1] }, emptyInitiate()])
  equal((await c.next(5000)).slice(0, 2), ['NEG-MSG', 'idle'], 'the session opens')
  const t0 = Date.now()
  const reason = await expectNegErr(c, 'idle', 'closed:', 'an idle session')
  const waited = (Date.now() - t0) / 1000
  check(waited >= IDLE_SECONDS - 0.5 && waited < IDLE_SECONDS + 3, `closed after ${waited} s, idle timeout ${IDLE_SECONDS} s`)
  check(reason.includes('idle'), `the reason says why: ${show(reason)}`)
  c.send(['NEG-MSG', 'idle', '61'])
  await expectNegErr(c, 'idle', 'closed:', 'NEG-MSG after the timeout')
  await stillWorks(c, 'idle timeout')
}, { timeout: 20000 })

test('NIP-11 lists 77 only when negentropy is enabled; disabled, NEG-OPEN gets a NOTICE', async () => {
  const info = async (n) => {
    const res = await fetch(n.httpUrl, { headers: { Accept: 'application/nostr+json' } })
    return (await res.json()).supported_nips
  }
  check((await info(node)).includes(77), `enabled node lists 77: ${show(await info(node))}`)
  check(!(await info(disabled)).includes(77), `disabled node does not list 77: ${show(await info(disabled))}`)
  const c = await client(disabled)
  c.send(['NEG-OPEN', 'off', { kinds: [1] }, emptyInitiate()])
  const msg = await c.next(5000)
  check(msg[0] === 'NOTICE' && msg[1].startsWith('invalid:'), `disabled: expected a NOTICE, got ${show(msg)}`)
})

test('the nodes are still alive and stop cleanly', async () => {
  node.assertAlive()
  await node.stop()
  await disabled.stop()
})

await run()
