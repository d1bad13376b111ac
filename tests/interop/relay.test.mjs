// A relay operator's check of `ferry node` with nostr-tools: publish, read back
// with exact sets and order, live subscriptions, COUNT, replaceable and
// addressable events, deletions, ephemeral and expiring events, NIP-11, and a
// restart on the same data dir.
//
// Run: node relay.test.mjs <path-to-ferry-binary>
import { finalizeEvent, generateSecretKey, getPublicKey, verifyEvent } from 'nostr-tools/pure'
import { Relay, useWebSocketImplementation } from 'nostr-tools/relay'
import {
  RawClient, WebSocket, check, cleanup, compareServed, equal, ferryBinary, makeNode, run, sameList, sameSet,
  show, sleep, startsWith, test, unixNow, waitFor, withTimeout,
} from './lib.mjs'

useWebSocketImplementation(WebSocket)

const binary = ferryBinary()
const node = makeNode({ binary, name: 'relay-node' })
const DEFAULT_LIMIT = 500 // ferry's default relay.limits.default_limit

// -- what the relay must hold: every event we expect it to serve ------------

const model = new Map()

function matches(f, e) {
  if (f.ids && !f.ids.includes(e.id)) return false
  if (f.kinds && !f.kinds.includes(e.kind)) return false
  if (f.authors && !f.authors.includes(e.pubkey)) return false
  if (f.since !== undefined && e.created_at < f.since) return false
  if (f.until !== undefined && e.created_at > f.until) return false
  for (const [key, values] of Object.entries(f)) {
    if (key[0] !== '#') continue
    if (!e.tags.some((t) => t[0] === key.slice(1) && values.includes(t[1]))) return false
  }
  return true
}

/** The ids a single-filter REQ must return, in the order it must return them. */
function expectedIds(f) {
  const list = [...model.values()].filter((e) => matches(f, e)).sort(compareServed)
  return list.slice(0, f.limit ?? DEFAULT_LIMIT).map((e) => e.id)
}

function expectedCount(f) {
  return [...model.values()].filter((e) => matches(f, e)).length
}

// -- keys and events ----------------------------------------------------------

function makeKey() {
  const sk = generateSecretKey()
  return { sk, pk: getPublicKey(sk) }
}

function sign(key, kind, created_at, tags = [], content = '') {
  return finalizeEvent({ kind, created_at, tags, content }, key.sk)
}

// -- nostr-tools helpers -------------------------------------------------------

const relays = []

// verifyEvent for every received event, remembered per exact content: the
// same event served by many REQs is checked once (Schnorr in JS is slow).
const verified = new Map()
function checkedVerify(event) {
  const key = JSON.stringify([event.id, event.pubkey, event.created_at, event.kind, event.tags, event.content, event.sig])
  let good = verified.get(key)
  if (good === undefined) {
    // A fresh copy: nostr-tools caches its verdict on the object.
    good = verifyEvent(JSON.parse(JSON.stringify(event)))
    verified.set(key, good)
  }
  return good
}

async function connect() {
  const relay = await withTimeout(Relay.connect(node.url, { enablePing: false, verifyEvent: checkedVerify }), 5000,
    `Relay.connect(${node.url})`)
  relay.publishTimeout = 30000
  relay.onnotice = (msg) => notices.push(msg)
  relays.push(relay)
  return relay
}
const notices = []

cleanup(() => {
  for (const r of relays) r.close()
})

/**
 * Every event of a REQ up to its real EOSE (nostr-tools' EOSE timeout is set
 * far out, so a missing EOSE fails here instead of passing silently). Every
 * event must match the filters and pass verifyEvent.
 */
function fetchEvents(relay, filters, ms = 15000) {
  const what = `REQ ${JSON.stringify(filters)}`
  return withTimeout(new Promise((resolve, reject) => {
    const events = []
    const invalid = []
    const sub = relay.subscribe(filters, {
      eoseTimeout: 600000,
      onevent: (e) => events.push(e),
      oninvalidevent: (e) => invalid.push(e),
      oneose: () => {
        sub.close()
        if (invalid.length) return reject(new Error(`${what}: ${invalid.length} event(s) failed verification or did not match, e.g. ${show(invalid[0])}`))
        for (const e of events) {
          if (!checkedVerify(e)) return reject(new Error(`${what}: event fails verifyEvent: ${show(e)}`))
        }
        resolve(events)
      },
      onclose: (reason) => {
        if (!sub.eosed) reject(new Error(`${what}: closed before EOSE: ${reason}`))
      },
    })
  }), ms, what)
}

/** Checks a single-filter REQ against the model: exact ids, exact order. */
async function expectServed(relay, filter, what = JSON.stringify(filter)) {
  const events = await fetchEvents(relay, [filter])
  sameList(events.map((e) => e.id), expectedIds(filter), `REQ ${what}`)
  return events
}

/** publish() resolving to { ok, reason } instead of throwing on OK false. */
async function tryPublish(relay, event) {
  try {
    const reason = await relay.publish(event)
    return { ok: true, reason }
  } catch (err) {
    return { ok: false, reason: err.message }
  }
}

async function mustPublish(relay, event, what = `kind ${event.kind}`) {
  const r = await tryPublish(relay, event)
  check(r.ok, `publish ${what} ${event.id}: expected OK true, got OK false ${show(r.reason)}`)
  model.set(event.id, event)
}

/** A raw COUNT: `["COUNT",id,{"count":N}]` equal to the model's count. */
async function expectCount(client, id, filter) {
  client.send(['COUNT', id, filter])
  const msg = await client.next(10000)
  equal(msg, ['COUNT', id, { count: expectedCount(filter) }], `COUNT ${JSON.stringify(filter)}`)
}

// -- the bulk data set ----------------------------------------------------------

const keys = Array.from({ length: 20 }, makeKey)
const topics = ['nostr', 'ferry', 'cpp', 'relay', 'sync']
const base = unixNow() - 200000
const bulk = []

function makeBulk() {
  const kindOf = [1, 1, 1, 1, 1, 7, 7, 30023, 1, 7]
  for (let i = 0; i < 1000; i++) {
    const key = keys[i % keys.length]
    let created_at = base + i * 150
    if (i % 10 === 9) created_at = bulk[i - 1].created_at // pairs with equal timestamps
    if (i >= 501 && i <= 504) created_at = bulk[500].created_at // a group of five
    const kind = kindOf[i % 10]
    const tags = []
    let content = `bulk event ${i}`
    if (kind === 1) {
      if (i % 3 === 0) tags.push(['t', topics[i % 5]])
      if (i % 7 === 0) tags.push(['t', topics[(i + 2) % 5]])
      if (i % 4 === 0) tags.push(['p', keys[(i + 3) % keys.length].pk])
    } else if (kind === 7) {
      const target = bulk[i - 1]
      tags.push(['e', target.id], ['p', target.pubkey])
      content = i % 2 ? '+' : '🤙'
    } else {
      tags.push(['d', `article-${i}`], ['t', topics[i % 5]], ['title', `Article ${i}`])
      content = `# Article ${i}\n\nlong-form text with "quotes", \\ and unicode 日本語`
    }
    bulk.push(sign(key, kind, created_at, tags, content))
  }
}

// -- tests ------------------------------------------------------------------------

let reader
let raw

test('node starts on a fresh data dir', async () => {
  await node.start()
  reader = await connect()
  raw = await RawClient.connect(node.url)
}, { fatal: true })

test('publish 1,000 events from 20 keys: every OK is true', async () => {
  makeBulk()
  const order = [...bulk]
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1))
    ;[order[i], order[j]] = [order[j], order[i]]
  }
  const writers = await Promise.all([connect(), connect(), connect(), connect()])
  const results = await Promise.all(order.map((e, i) => tryPublish(writers[i % writers.length], e)))
  const refused = results.map((r, i) => ({ ...r, id: order[i].id })).filter((r) => !r.ok)
  check(refused.length === 0, `${refused.length} of 1000 refused, e.g. ${show(refused.slice(0, 3))}`)
  for (const e of bulk) model.set(e.id, e)
  for (const w of writers) w.close()
}, { timeout: 60000, fatal: true })

test('read back by authors', async () => {
  await expectServed(reader, { authors: [keys[0].pk], limit: 5000 })
  await expectServed(reader, { authors: [keys[1].pk, keys[2].pk, keys[3].pk], limit: 5000 })
})

test('read back by kinds', async () => {
  await expectServed(reader, { kinds: [7], limit: 5000 })
  await expectServed(reader, { kinds: [30023], limit: 5000 })
  // More than the default limit, fewer than max_limit.
  const events = await expectServed(reader, { kinds: [1, 7], limit: 5000 })
  check(events.length > DEFAULT_LIMIT, `kinds 1,7 served ${events.length} events`)
})

test('read back by #t, #p and #e', async () => {
  await expectServed(reader, { '#t': ['nostr'], limit: 5000 })
  await expectServed(reader, { '#t': ['cpp', 'sync'], limit: 5000 })
  await expectServed(reader, { '#p': [keys[5].pk], limit: 5000 })
  const target = bulk[4]
  const events = await expectServed(reader, { '#e': [target.id], limit: 5000 })
  check(events.length === 1, `#e of ${target.id} served ${events.length} events`)
})

test('read back by ids', async () => {
  const ids = bulk.filter((_, i) => i % 33 === 0).map((e) => e.id)
  const events = await expectServed(reader, { ids, limit: 5000 })
  equal(events.length, ids.length, 'events served for known ids')
  await expectServed(reader, { ids: ['f'.repeat(64)], limit: 10 }, 'an unknown id')
})

test('since/until windows are inclusive', async () => {
  const since = bulk[200].created_at
  const until = bulk[400].created_at
  const events = await expectServed(reader, { since, until, limit: 5000 })
  check(events.some((e) => e.created_at === since) && events.some((e) => e.created_at === until),
    'the window includes events at exactly since and until')
  await expectServed(reader, { since: bulk[900].created_at, limit: 5000 })
  await expectServed(reader, { until: bulk[100].created_at, limit: 5000 })
  await expectServed(reader, { kinds: [1], since, until, limit: 5000 })
})

test('limit returns the newest N, ties by ascending id', async () => {
  await expectServed(reader, { kinds: [1], limit: 10 })
  await expectServed(reader, { limit: 1 })
  await expectServed(reader, { authors: [keys[7].pk], limit: 3 })
  // Cut inside groups of equal created_at: only the lowest ids may be served.
  const all = [...model.values()].filter((e) => e.kind === 1).sort(compareServed)
  const tied = all.map((e, i) => i).filter((i) => i > 0 && all[i - 1].created_at === all[i].created_at)
  check(tied.length > 0, 'the data set has ties')
  for (const cut of tied.slice(0, 3)) await expectServed(reader, { kinds: [1], limit: cut }, `kinds 1, limit ${cut} (inside a tie)`)
  // The group of five at one timestamp, cut after two.
  const groupTs = bulk[500].created_at
  await expectServed(reader, { until: groupTs, since: groupTs, limit: 2 }, 'five events at one timestamp, limit 2')
})

test('a filter without limit gets the default limit (500 newest)', async () => {
  const events = await expectServed(reader, { kinds: [1] })
  equal(events.length, DEFAULT_LIMIT, 'events served without a limit')
})

test('combined conditions and several filters in one REQ', async () => {
  await expectServed(reader, { authors: [keys[0].pk, keys[10].pk], kinds: [1], '#t': ['nostr', 'ferry'], limit: 5000 })
  await expectServed(reader, { kinds: [30023], '#d': ['article-7', 'article-17', 'nope'], limit: 5000 })
  const filters = [{ authors: [keys[0].pk], limit: 5000 }, { kinds: [30023], limit: 5000 }]
  const events = await fetchEvents(reader, filters)
  const want = [...model.values()].filter((e) => filters.some((f) => matches(f, e))).map((e) => e.id)
  sameSet(events.map((e) => e.id), want, 'REQ with two overlapping filters')
})

test('several filters: each limit applies to its own filter, results are the union', async () => {
  const cases = [
    [{ kinds: [1], limit: 1 }, { kinds: [1], limit: 1 }],
    [{ kinds: [1], limit: 5 }, { kinds: [1, 7], limit: 5 }],
    [{ authors: [keys[2].pk], limit: 4 }, { '#t': ['nostr'], limit: 4 }, { limit: 2 }],
  ]
  const failures = []
  for (const filters of cases) {
    const events = await fetchEvents(reader, filters)
    const want = new Set(filters.flatMap((f) => expectedIds(f)))
    try {
      sameSet(events.map((e) => e.id), [...want], `REQ ${JSON.stringify(filters)}`)
    } catch (err) {
      failures.push(err.message)
    }
  }
  check(failures.length === 0, failures.join('\n'))
})

test('publishing a stored event again gets OK true', async () => {
  const again = await tryPublish(reader, bulk[10])
  check(again.ok, `a duplicate: expected OK true, got OK false ${show(again.reason)}`)
})

test('live: after EOSE only new matching events arrive', async () => {
  const writer = await connect()
  const key = makeKey()
  const filter = { kinds: [1], '#t': ['live-check'] }
  const got = []
  const wrong = []
  let eose = false
  const sub = reader.subscribe([filter], {
    eoseTimeout: 600000,
    onevent: (e) => got.push(e),
    oninvalidevent: (e) => wrong.push(e),
    oneose: () => { eose = true },
  })
  try {
    await waitFor(() => eose, 5000, 'EOSE of the live subscription')
    equal(got.length, 0, 'stored events for a tag nobody used')
    const now = unixNow()
    const matching = [0, 1, 2].map((i) => sign(key, 1, now - i, [['t', 'live-check']], `live ${i}`))
    const other = [
      sign(key, 7, now, [['t', 'live-check']], 'wrong kind'),
      sign(key, 1, now, [['t', 'other-tag']], 'wrong tag'),
      sign(key, 1, now, [], 'no tag'),
    ]
    for (const e of [matching[0], other[0], matching[1], other[1], other[2], matching[2]]) await mustPublish(writer, e)
    await waitFor(() => got.length >= 3, 5000, `3 live events (got ${got.length})`)
    await sleep(500)
    sameSet(got.map((e) => e.id), matching.map((e) => e.id), 'live events')
    equal(wrong.length, 0, 'non-matching live events delivered')
    for (const e of got) check(checkedVerify(e), `live event fails verifyEvent: ${show(e)}`)
  } finally {
    sub.close()
    writer.close()
  }
})

test('live: since/until/ids/authors of a filter apply to live events too', async () => {
  const writer = await connect()
  const key = makeKey()
  const now = unixNow()
  const e = sign(key, 1, now, [['t', 'live-window']], 'live window')
  const filters = {
    past: { '#t': ['live-window'], until: now - 1000 },
    future: { '#t': ['live-window'], since: now + 600 },
    otherIds: { '#t': ['live-window'], ids: ['e'.repeat(64)] },
    otherAuthor: { '#t': ['live-window'], authors: [keys[0].pk] },
    match: { '#t': ['live-window'], since: now - 10, until: now + 10, authors: [key.pk] },
  }
  const got = Object.fromEntries(Object.keys(filters).map((k) => [k, []]))
  const subs = []
  let eosed = 0
  for (const [name, f] of Object.entries(filters)) {
    subs.push(reader.subscribe([f], {
      eoseTimeout: 600000,
      onevent: (ev) => got[name].push(ev.id),
      oninvalidevent: (ev) => got[name].push(ev.id),
      oneose: () => { eosed++ },
    }))
  }
  try {
    await waitFor(() => eosed === subs.length, 5000, 'EOSE of every subscription')
    await mustPublish(writer, e)
    await waitFor(() => got.match.length > 0, 5000, 'the matching live event')
    await sleep(500)
    equal(got, { past: [], future: [], otherIds: [], otherAuthor: [], match: [e.id] }, 'live events per subscription')
  } finally {
    for (const sub of subs) sub.close()
    writer.close()
  }
})

test('live: a REQ opened while events stream in gets each exactly once', async () => {
  const writer = await connect()
  const key = makeKey()
  const now = unixNow()
  const events = Array.from({ length: 300 }, (_, i) => sign(key, 1, now - 300 + i, [['t', 'race']], `race ${i}`))
  const seen = new Map()
  let eose = false
  let published = 0
  const all = Promise.all(events.map((e) => mustPublish(writer, e).then(() => { published++ })))
  let sub
  try {
    await waitFor(() => published >= 60, 10000, 'the first OKs')
    sub = reader.subscribe([{ '#t': ['race'], limit: 5000 }], {
      eoseTimeout: 600000,
      onevent: (e) => seen.set(e.id, (seen.get(e.id) ?? 0) + 1),
      oneose: () => { eose = true },
    })
    await withTimeout(all, 20000, 'publishing 300 events')
    await waitFor(() => eose && seen.size >= events.length, 5000, `all 300 events (got ${seen.size}, EOSE ${eose})`)
    await sleep(300)
    const twice = [...seen].filter(([, n]) => n > 1)
    check(twice.length === 0, `${twice.length} event(s) delivered more than once, e.g. ${show(twice.slice(0, 2))}`)
    sameSet([...seen.keys()], events.map((e) => e.id), 'events seen by a REQ opened mid-stream')
  } finally {
    await all.catch(() => {})
    sub?.close()
    writer.close()
  }
})

test('COUNT (NIP-45) over raw ws equals the expected number', async () => {
  await expectCount(raw, 'c', { authors: [keys[3].pk] })
  await expectCount(raw, 'c2', { kinds: [1] }) // more than the default limit
  await expectCount(raw, 'c3', { '#t': ['nostr'] })
  await expectCount(raw, 'c4', { kinds: [7], since: bulk[300].created_at, until: bulk[700].created_at })
  await expectCount(raw, 'c5', { ids: ['0'.repeat(64)] })
  // Several filters count their union, once per event.
  const filters = [{ kinds: [7] }, { authors: [keys[5].pk] }, { '#t': ['nostr'] }]
  raw.send(['COUNT', 'c6', ...filters])
  const union = [...model.values()].filter((e) => filters.some((f) => matches(f, e))).length
  equal(await raw.next(10000), ['COUNT', 'c6', { count: union }], `COUNT ${JSON.stringify(filters)}`)
  equal(await withTimeout(reader.count([{ kinds: [30023] }], {}), 10000, 'nostr-tools count'), expectedCount({ kinds: [30023] }),
    'nostr-tools count of kind 30023')
})

test('replaceable: kind 0 twice serves only the newer', async () => {
  const key = makeKey()
  const now = unixNow()
  const older = sign(key, 0, now - 100, [], '{"name":"old"}')
  const newer = sign(key, 0, now - 50, [], '{"name":"new"}')
  await mustPublish(reader, older)
  await mustPublish(reader, newer)
  model.delete(older.id)
  const filter = { kinds: [0], authors: [key.pk], limit: 10 }
  const events = await expectServed(reader, filter)
  equal(events.map((e) => e.content), ['{"name":"new"}'], 'kind 0 served')
  // An older version arriving late must not replace the newer one.
  const stale = sign(key, 0, now - 200, [], '{"name":"stale"}')
  await tryPublish(reader, stale)
  await tryPublish(reader, older)
  await expectServed(reader, filter, 'kind 0 after late older versions')
  // Kind 10002 (10000..19999) is replaceable too.
  const l1 = sign(key, 10002, now - 30, [['r', 'wss://one.example']])
  const l2 = sign(key, 10002, now - 20, [['r', 'wss://two.example']])
  await mustPublish(reader, l1)
  await mustPublish(reader, l2)
  model.delete(l1.id)
  await expectServed(reader, { kinds: [10002], authors: [key.pk], limit: 10 })
})

test('replaceable with equal created_at keeps the lowest id', async () => {
  const now = unixNow()
  for (const lowFirst of [false, true]) {
    const key = makeKey()
    const [a, b] = [sign(key, 3, now - 5, [], 'a'), sign(key, 3, now - 5, [], 'b')]
    const [low, high] = a.id < b.id ? [a, b] : [b, a]
    for (const e of lowFirst ? [low, high] : [high, low]) {
      const r = await tryPublish(reader, e)
      if (r.ok) model.set(e.id, e)
    }
    model.delete(high.id)
    model.set(low.id, low)
    await expectServed(reader, { kinds: [3], authors: [key.pk], limit: 10 },
      `kind 3 with equal created_at (${lowFirst ? 'lower' : 'higher'} id published first)`)
  }
})

test('addressable: replaced per d tag', async () => {
  const key = makeKey()
  const other = makeKey()
  const now = unixNow()
  const a1 = sign(key, 30023, now - 100, [['d', 'a']], 'a v1')
  const a2 = sign(key, 30023, now - 50, [['d', 'a']], 'a v2')
  const b = sign(key, 30023, now - 80, [['d', 'b']], 'b')
  const otherA = sign(other, 30023, now - 90, [['d', 'a']], 'other author, same d')
  for (const e of [a1, b, otherA, a2]) await mustPublish(reader, e)
  model.delete(a1.id)
  const events = await expectServed(reader, { kinds: [30023], authors: [key.pk], '#d': ['a', 'b'], limit: 10 })
  equal(events.map((e) => e.content), ['a v2', 'b'], 'addressable versions served')
  await expectServed(reader, { kinds: [30023], '#d': ['a'], authors: [key.pk, other.pk], limit: 10 })
  // The older version published again stays replaced.
  await tryPublish(reader, a1)
  await expectServed(reader, { kinds: [30023], authors: [key.pk], limit: 10 }, 'after re-publishing the old version')
})

test('NIP-09: kind 5 deletes the author\'s events and blocks re-publication', async () => {
  const key = makeKey()
  const stranger = makeKey()
  const now = unixNow()
  const x = sign(key, 1, now - 40, [], 'to be deleted')
  const y = sign(key, 1, now - 39, [], 'stays')
  const z = sign(stranger, 1, now - 38, [], 'someone else\'s event')
  for (const e of [x, y, z]) await mustPublish(reader, e)
  const del = sign(key, 5, now - 30, [['e', x.id], ['e', z.id], ['k', '1']], 'mistake')
  await mustPublish(reader, del, 'the deletion')
  model.delete(x.id)
  const events = await expectServed(reader, { ids: [x.id, y.id, z.id], limit: 10 })
  check(!events.some((e) => e.id === x.id), 'the deleted event is still served')
  check(events.some((e) => e.id === z.id), 'a deletion by another pubkey removed an event')
  await expectServed(reader, { kinds: [5], authors: [key.pk], limit: 10 }, 'the deletion request itself')
  const again = await tryPublish(reader, x)
  check(!again.ok, `re-publishing a deleted event: expected OK false, got OK true ${show(again.reason)}`)
  startsWith(again.reason, 'blocked:', 're-publishing a deleted event')
  await expectServed(reader, { ids: [x.id], limit: 10 }, 'the deleted event after re-publication')
  const count = await RawClient.connect(node.url)
  try {
    await expectCount(count, 'deleted', { ids: [x.id, y.id] })
  } finally {
    await count.close()
  }
})

test('NIP-09: a deletion that arrives before its event', async () => {
  const key = makeKey()
  const stranger = makeKey()
  const now = unixNow()
  const own = sign(key, 1, now - 20, [], 'deleted by its author before it arrived')
  const victim = sign(key, 1, now - 19, [], 'a stranger asked to delete this before it arrived')
  await mustPublish(reader, sign(key, 5, now - 10, [['e', own.id]]), 'an early deletion by the author')
  await mustPublish(reader, sign(stranger, 5, now - 10, [['e', victim.id]]), 'an early deletion by a stranger')
  const r = await tryPublish(reader, own)
  check(!r.ok, `an event its author deleted beforehand: expected OK false, got OK true ${show(r.reason)}`)
  await mustPublish(reader, victim, 'an event a stranger tried to delete beforehand')
  await expectServed(reader, { ids: [own.id, victim.id], limit: 10 }, 'events after early deletions')
})

test('NIP-09: deleting a deletion request has no effect', async () => {
  const key = makeKey()
  const now = unixNow()
  const x = sign(key, 1, now - 30, [], 'deleted for good')
  await mustPublish(reader, x)
  const del = sign(key, 5, now - 20, [['e', x.id]])
  await mustPublish(reader, del, 'the deletion')
  model.delete(x.id)
  const undo = sign(key, 5, now - 10, [['e', del.id]])
  await tryPublish(reader, undo).then((r) => r.ok && model.set(undo.id, undo))
  await expectServed(reader, { authors: [key.pk], limit: 10 }, 'after deleting the deletion')
  check((await fetchEvents(reader, [{ ids: [del.id] }])).length === 1, 'the first deletion request is no longer served')
})

test('NIP-09: an a-tag deletion removes addressable versions up to its time', async () => {
  const key = makeKey()
  const now = unixNow()
  const v1 = sign(key, 30023, now - 100, [['d', 'gone']], 'v1')
  await mustPublish(reader, v1)
  const del = sign(key, 5, now - 90, [['a', `30023:${key.pk}:gone`]], '')
  await mustPublish(reader, del, 'the a-tag deletion')
  model.delete(v1.id)
  await expectServed(reader, { kinds: [30023], authors: [key.pk], limit: 10 }, 'after the a-tag deletion')
  const old = await tryPublish(reader, v1)
  check(!old.ok, `re-publishing a version older than its deletion: expected OK false, got OK true ${show(old.reason)}`)
  const v2 = sign(key, 30023, now - 10, [['d', 'gone']], 'v2, newer than the deletion')
  await mustPublish(reader, v2, 'a version newer than the deletion')
  await expectServed(reader, { kinds: [30023], authors: [key.pk], limit: 10 }, 'a version newer than the deletion')
})

test('ephemeral kind 20001 is delivered live but not stored', async () => {
  const key = makeKey()
  const writer = await connect()
  const got = []
  let eose = false
  const sub = reader.subscribe([{ kinds: [20001], authors: [key.pk] }], {
    eoseTimeout: 600000,
    onevent: (e) => got.push(e),
    oneose: () => { eose = true },
  })
  try {
    await waitFor(() => eose, 5000, 'EOSE')
    const e = sign(key, 20001, unixNow(), [], 'ephemeral')
    const r = await tryPublish(writer, e)
    check(r.ok, `ephemeral event: expected OK true, got ${show(r.reason)}`)
    await waitFor(() => got.length >= 1, 5000, 'the live ephemeral event')
    equal(got.map((x) => x.id), [e.id], 'live ephemeral events')
    const stored = await fetchEvents(reader, [{ kinds: [20001], authors: [key.pk], limit: 10 }])
    equal(stored.length, 0, 'stored ephemeral events')
  } finally {
    sub.close()
    writer.close()
  }
})

test('NIP-40: an expired event is refused, a future expiration is served until it passes', async () => {
  const key = makeKey()
  const now = unixNow()
  const expired = sign(key, 1, now - 120, [['expiration', String(now - 60)]], 'already expired')
  const r = await tryPublish(reader, expired)
  check(!r.ok, `an already-expired event: expected OK false, got OK true ${show(r.reason)}`)
  startsWith(r.reason, 'invalid:', 'an already-expired event')
  await expectServed(reader, { ids: [expired.id], limit: 10 }, 'the expired event')
  const later = sign(key, 1, now, [['expiration', String(now + 3600)]], 'expires in an hour')
  await mustPublish(reader, later)
  const soon = sign(key, 1, now, [['expiration', String(now + 2)]], 'expires in two seconds')
  await mustPublish(reader, soon)
  await expectServed(reader, { authors: [key.pk], limit: 10 }, 'events with future expirations')
  await waitFor(() => unixNow() > now + 2, 5000, 'the expiration passing')
  model.delete(soon.id)
  await expectServed(reader, { authors: [key.pk], limit: 10 }, 'after an expiration passed')
  await expectCount(raw, 'exp', { authors: [key.pk] })
})

test('NIP-11: relay information document with CORS', async () => {
  const res = await fetch(node.httpUrl, { headers: { Accept: 'application/nostr+json' }, signal: AbortSignal.timeout(5000) })
  equal(res.status, 200, 'HTTP status')
  equal(res.headers.get('access-control-allow-origin'), '*', 'access-control-allow-origin')
  const type = res.headers.get('content-type') || ''
  check(type.includes('application/nostr+json') || type.includes('application/json'), `content-type ${show(type)}`)
  const info = await res.json()
  check(Array.isArray(info.supported_nips), `supported_nips is not an array: ${show(info)}`)
  for (const nip of [1, 9, 11, 40, 45]) check(info.supported_nips.includes(nip), `supported_nips ${show(info.supported_nips)} lacks ${nip}`)
  check(typeof info.name === 'string', `name: ${show(info.name)}`)
  const limitation = info.limitation ?? {}
  if ('max_subscriptions' in limitation) equal(limitation.max_subscriptions, 8, 'limitation.max_subscriptions')
  if ('max_filters' in limitation) equal(limitation.max_filters, 4, 'limitation.max_filters')
})

/** The node's count of pages read ahead with this result, from its /metrics. */
async function readAheadPages(result) {
  const line = node.logs.find((l) => /control-plane listening on http:\/\/127\.0\.0\.1:\d+/.test(l))
  check(line, 'the node logged its admin port')
  const port = line.match(/control-plane listening on http:\/\/127\.0\.0\.1:(\d+)/)[1]
  const res = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(10000) })
  const text = await res.text()
  const m = text.match(new RegExp(`\\nferry_relay_read_ahead_pages_total\\{result="${result}"\\} (\\S+)`))
  return m ? Number(m[1]) : 0
}

test('paging with limit + until: every page is exact, also with events published between pages', async () => {
  // The node reads a paging client's next page while the client reads the
  // last one; an event published in between must be in the next page.
  const servedBefore = await readAheadPages('served')
  const droppedBefore = await readAheadPages('dropped')
  const writer = await connect()
  const key = makeKey()
  const filter = { kinds: [1], limit: 30 }
  let until
  let pages = 0
  let published = 0
  for (;;) {
    const f = until === undefined ? filter : { ...filter, until }
    const events = await expectServed(reader, f, `page ${pages + 1} ${JSON.stringify(f)}`)
    pages++
    if (events.length < filter.limit) break
    until = events[events.length - 1].created_at
    if (pages % 3 === 0) {
      await mustPublish(writer, sign(key, 1, until - 1, [], `published between pages ${pages} and ${pages + 1}`))
      published++
    }
    check(pages < 200, `paging ends (page ${pages})`)
  }
  check(published >= 3, `${published} events published between ${pages} pages`)
  // Pages were served from memory, and the ones a publication made stale
  // were dropped (and read afresh: the checks above).
  const served = (await readAheadPages('served')) - servedBefore
  const dropped = (await readAheadPages('dropped')) - droppedBefore
  check(served >= 1 && dropped >= 1, `pages read ahead: ${served} served, ${dropped} dropped`)
})

test('the whole store is served in order, and COUNT agrees', async () => {
  const events = await expectServed(reader, { limit: 5000 }, 'everything')
  check(events.length > 1000, `served ${events.length} events`)
  await expectCount(raw, 'all', {})
  equal(notices, [], 'NOTICEs received by nostr-tools clients')
})

test('restart on the same data dir: every event is still served', async () => {
  for (const r of relays.splice(0)) r.close()
  await raw.close()
  await node.stop()
  await node.start()
  reader = await connect()
  raw = await RawClient.connect(node.url)
  const events = await expectServed(reader, { limit: 5000 }, 'everything after restart')
  equal(events.length, model.size, 'events after restart')
  await expectCount(raw, 'all', {})
  await expectServed(reader, { authors: [keys[0].pk], limit: 5000 }, 'by author after restart')
  await expectServed(reader, { '#t': ['nostr'], limit: 5000 }, 'by tag after restart')
  await expectServed(reader, { kinds: [30023], limit: 5000 }, 'by kind after restart')
  await expectServed(reader, { kinds: [1], limit: 7 }, 'limit after restart')
}, { fatal: true })

test('node stops cleanly on SIGTERM (exit code 0)', async () => {
  for (const r of relays.splice(0)) r.close()
  await raw.close()
  await node.stop()
})

cleanup(() => node.kill())

await run({ deadline: 240000 })
