// What `ferry node` does with bad input, over raw WebSocket frames: malformed
// JSON, unknown verbs, forged events, oversize frames, too many subscriptions
// or filters, invalid filters, CLOSE; and afterwards nothing stored is lost.
//
// Run: node bad_input.test.mjs <path-to-ferry-binary>
import { finalizeEvent, generateSecretKey, getPublicKey } from 'nostr-tools/pure'
import {
  RawClient, check, cleanup, compareServed, equal, ferryBinary, makeNode, run, sameList, show, startsWith, test,
  unixNow,
} from './lib.mjs'

const binary = ferryBinary()
const MAX_FRAME = 65536
const node = makeNode({ binary, name: 'bad-input-node', limits: { max_frame_bytes: MAX_FRAME } })

const key = { sk: generateSecretKey() }
key.pk = getPublicKey(key.sk)

let serial = 0
function sign(tags = [], content = `event ${serial}`, kind = 1, created_at = unixNow() - 1000 + serial) {
  serial++
  return finalizeEvent({ kind, created_at, tags, content }, key.sk)
}

/** Every event the node accepted: all of them must be served at the end. */
const stored = new Map()

const clients = []
async function client() {
  const c = await RawClient.connect(node.url)
  clients.push(c)
  return c
}
cleanup(async () => {
  for (const c of clients) await c.close()
})

async function publishOk(c, event, what) {
  const r = await c.publish(event)
  check(r.ok, `${what}: expected OK true, got OK false ${show(r.reason)}`)
  stored.set(event.id, event)
}

async function expectNotice(c, what, prefix = 'invalid:') {
  const msg = await c.next(5000)
  check(msg[0] === 'NOTICE' && typeof msg[1] === 'string', `${what}: expected a NOTICE, got ${show(msg)}`)
  if (prefix) startsWith(msg[1], prefix, `${what}: NOTICE`)
  return msg
}

async function expectClosed(c, subId, what, prefix) {
  const msg = await c.next(5000)
  check(msg[0] === 'CLOSED' && msg[1] === subId && typeof msg[2] === 'string',
    `${what}: expected ["CLOSED",${JSON.stringify(subId)},...], got ${show(msg)}`)
  if (prefix) startsWith(msg[2], prefix, `${what}: CLOSED reason`)
  return msg
}

/** A refused EVENT: OK false "invalid:" for its id (or, when no id is readable, a NOTICE "invalid:"). */
async function expectRefused(c, frame, id, what, { noticeAllowed = false } = {}) {
  c.send(frame)
  const msg = await c.next(5000)
  if (noticeAllowed && msg[0] === 'NOTICE') {
    startsWith(msg[1], 'invalid:', `${what}: NOTICE`)
    return
  }
  check(msg[0] === 'OK' && msg[1] === id, `${what}: expected ["OK",${JSON.stringify(id)},false,"invalid: ..."], got ${show(msg)}`)
  equal(msg[2], false, `${what}: OK flag`)
  startsWith(msg[3], 'invalid:', `${what}: OK reason`)
}

/** The served ids for a filter must be exactly the stored ones, newest first. */
async function expectStored(c, subId, filter, what) {
  const events = await c.req(subId, [filter])
  c.send(['CLOSE', subId])
  const want = [...stored.values()].filter((e) => !filter.ids || filter.ids.includes(e.id)).sort(compareServed).map((e) => e.id)
  sameList(events.map((e) => e.id), want, what)
}

// -- tests ----------------------------------------------------------------------

let main

test('node starts; 20 events are stored', async () => {
  await node.start()
  main = await client()
  for (let i = 0; i < 20; i++) await publishOk(main, sign([['t', 'seed']]), `seed ${i}`)
  await expectStored(main, 'seed', { limit: 100 }, 'the seed events')
}, { fatal: true })

test('malformed JSON gets a NOTICE "invalid:"', async () => {
  for (const frame of ['["REQ","x",{', 'hello', '{"not":"an array"}', '', '[]', '[1,2,3]', '["EVENT"', '\u0000']) {
    main.send(frame)
    await expectNotice(main, `frame ${show(frame)}`)
  }
})

test('an unknown message type gets a NOTICE', async () => {
  main.send(['FOO', 'bar'])
  await expectNotice(main, '["FOO","bar"]', null)
  main.send(['event', sign()])
  await expectNotice(main, 'a lower-case verb', null)
})

test('an EVENT with a wrong id gets OK false "invalid:"', async () => {
  const good = sign()
  const edited = { ...good, content: good.content + ' edited' }
  await expectRefused(main, ['EVENT', edited], good.id, 'content changed after signing')
  const otherId = { ...good, id: 'a'.repeat(64) }
  await expectRefused(main, ['EVENT', otherId], otherId.id, 'an id that is not the hash')
  const later = { ...good, created_at: good.created_at + 1 }
  await expectRefused(main, ['EVENT', later], good.id, 'created_at changed after signing')
})

test('an EVENT with a bad signature gets OK false "invalid:"', async () => {
  const good = sign()
  const flip = good.sig[10] === '0' ? '1' : '0'
  const badSig = { ...good, sig: good.sig.slice(0, 10) + flip + good.sig.slice(11) }
  await expectRefused(main, ['EVENT', badSig], good.id, 'one hex digit of the signature changed')
  const otherSig = { ...good, sig: sign().sig }
  await expectRefused(main, ['EVENT', otherSig], good.id, 'the signature of another event')
  const otherKey = generateSecretKey()
  const stolen = { ...finalizeEvent({ kind: 1, created_at: good.created_at, tags: [], content: good.content }, otherKey), pubkey: key.pk }
  await expectRefused(main, ['EVENT', stolen], stolen.id, 'another key\'s signature under our pubkey')
})

test('structurally broken events are refused with "invalid:"', async () => {
  const good = sign()
  const cases = [
    ['no sig', (({ sig, ...rest }) => rest)(good)],
    ['kind as a string', { ...good, kind: '1' }],
    ['tags not an array', { ...good, tags: {} }],
    ['a tag not an array', { ...good, tags: ['t'] }],
    ['created_at as a string', { ...good, created_at: String(good.created_at) }],
    ['a short pubkey', { ...good, pubkey: good.pubkey.slice(2) }],
    ['content as a number', { ...good, content: 5 }],
  ]
  for (const [what, ev] of cases) await expectRefused(main, ['EVENT', ev], good.id, what, { noticeAllowed: true })
  main.send(['EVENT'])
  await expectNotice(main, 'EVENT without an event')
  main.send(['EVENT', 'not an object'])
  await expectNotice(main, 'EVENT with a string')
})

test('an event dated too far in the future is refused', async () => {
  const future = sign([], 'from the future', 1, unixNow() + 3600)
  await expectRefused(main, ['EVENT', future], future.id, 'created_at an hour ahead (max_future_seconds 900)')
})

test('the connection still works after the bad frames', async () => {
  await publishOk(main, sign([['t', 'after-bad']]), 'a good event after bad ones')
  await expectStored(main, 'after-bad', { limit: 100 }, 'stored events after bad frames')
})

test('an oversize frame gets NOTICE "invalid:" and the same connection still answers', async () => {
  const fits = sign([['t', 'big']], 'x'.repeat(60000))
  check(JSON.stringify(['EVENT', fits]).length < MAX_FRAME, 'the near-limit frame fits')
  await publishOk(main, fits, `a ${JSON.stringify(['EVENT', fits]).length}-byte frame`)
  const huge = sign([['t', 'huge']], 'y'.repeat(100 * 1024))
  main.send(['EVENT', huge])
  // A NOTICE "invalid:"; an OK for the event, if any, must be false.
  for (;;) {
    const msg = await main.next(5000)
    if (msg[0] === 'OK' && msg[1] === huge.id) {
      equal(msg[2], false, `OK flag for the oversize event ${show(msg)}`)
      continue
    }
    check(msg[0] === 'NOTICE', `oversize frame: expected a NOTICE, got ${show(msg)}`)
    startsWith(msg[1], 'invalid:', 'oversize frame: NOTICE')
    break
  }
  await expectStored(main, 'after-huge', { ids: [huge.id, fits.id], limit: 10 }, 'REQ on the same connection after the oversize frame')
  // A 100 KB REQ frame too.
  main.send(['REQ', 'big-req', { ids: Array.from({ length: 1600 }, (_, i) => i.toString(16).padStart(64, '0')) }])
  await expectNotice(main, 'an oversize REQ')
  await publishOk(main, sign(), 'an event after the oversize frames')
})

test('the 9th subscription gets CLOSED "blocked:" (max 8); CLOSE frees a slot', async () => {
  const c = await client()
  for (let i = 1; i <= 8; i++) await c.req(`s${i}`, [{ kinds: [1], limit: 1 }])
  c.send(['REQ', 's9', { kinds: [1], limit: 1 }])
  await expectClosed(c, 's9', '9th subscription', 'blocked:')
  // Re-using an open id replaces that subscription: still allowed.
  await c.req('s1', [{ kinds: [1], limit: 1 }])
  c.send(['CLOSE', 's2'])
  const events = await c.req('s9', [{ kinds: [1], limit: 1 }])
  equal(events.length, 1, 'events for s9 after a CLOSE')
  c.send(['REQ', 's10', { kinds: [1], limit: 1 }])
  await expectClosed(c, 's10', '9th subscription after the swap', 'blocked:')
})

test('invalid filters get CLOSED "invalid:" and hold no slot', async () => {
  const c = await client()
  const bad = [
    { kinds: 'x' },
    { foo: 1 },
    { kinds: [1], unknown_field: true },
    { ids: ['zz'] },
    { authors: ['not hex'] },
    { limit: -1 },
    { since: 'yesterday' },
    { kinds: [-1] },
    { '#t': 'nostr' },
  ]
  for (const [i, f] of bad.entries()) {
    c.send(['REQ', `bad${i}`, f])
    await expectClosed(c, `bad${i}`, `REQ ${JSON.stringify(f)}`, 'invalid:')
  }
  c.send(['REQ', 'bad-second', { kinds: [1] }, 7])
  await expectClosed(c, 'bad-second', 'a number as the second filter', 'invalid:')
  c.send(['COUNT', 'bad-count', { kinds: 'x' }])
  await expectClosed(c, 'bad-count', 'COUNT with an invalid filter', 'invalid:')
  // None of those holds a subscription: eight valid ones still fit.
  for (let i = 1; i <= 8; i++) await c.req(`ok${i}`, [{ limit: 1 }])
})

test('subscription ids: empty or too long are refused, a missing one gets a NOTICE', async () => {
  const c = await client()
  c.send(['REQ', '', { limit: 1 }])
  await expectClosed(c, '', 'an empty subscription id', 'invalid:')
  const long = 'x'.repeat(65)
  c.send(['REQ', long, { limit: 1 }])
  await expectClosed(c, long, 'a 65-character subscription id', 'invalid:')
  c.send(['REQ', 5, { limit: 1 }])
  await expectNotice(c, 'a number as subscription id')
  const events = await c.req('x'.repeat(64), [{ limit: 1 }])
  equal(events.length, 1, 'events for a 64-character subscription id')
})

test('too many filters (5, max 4) get CLOSED; 4 are fine', async () => {
  const c = await client()
  const f = { kinds: [1], limit: 1 }
  c.send(['REQ', 'five', f, f, f, f, f])
  await expectClosed(c, 'five', '5 filters')
  const events = await c.req('four', [f, f, f, f])
  equal(events.length, 1, 'events for 4 identical filters')
  c.send(['COUNT', 'five-count', f, f, f, f, f])
  await expectClosed(c, 'five-count', 'COUNT with 5 filters')
})

test('CLOSE stops a subscription; the others on the connection go on', async () => {
  const c = await client()
  const filter = { kinds: [1], '#t': ['close-test'] }
  equal(await c.req('watch', [filter]), [], 'stored events for close-test')
  equal(await c.req('control', [filter]), [], 'stored events for close-test')
  c.send(['CLOSE', 'watch'])
  c.send(['CLOSE', 'never-opened'])
  const writer = await client()
  const e = sign([['t', 'close-test']])
  await publishOk(writer, e, 'the close-test event')
  const msg = await c.next(5000)
  equal(msg, ['EVENT', 'control', JSON.parse(JSON.stringify(e))], 'the event on the open subscription')
  await c.expectSilence(700, 'after CLOSE of "watch"')
})

test('a refused REQ over an open subscription id ends that subscription (NIP-01)', async () => {
  const c = await client()
  const filter = { kinds: [1], '#t': ['replaced-by-a-bad-req'] }
  equal(await c.req('s', [filter]), [], 'stored events for replaced-by-a-bad-req')
  c.send(['REQ', 's', { kinds: 'x' }])
  await expectClosed(c, 's', 'an invalid REQ reusing an open id', 'invalid:')
  const writer = await client()
  await publishOk(writer, sign([['t', 'replaced-by-a-bad-req']]), 'an event the old filter matched')
  await c.expectSilence(700, 'after the CLOSED of "s"')
  // Its slot is free again: eight subscriptions fit.
  for (let i = 1; i <= 8; i++) await c.req(`after${i}`, [{ limit: 1 }])
})

test('a kind-22242 event sent with EVENT is refused and reaches no subscriber (NIP-42)', async () => {
  const watcher = await client()
  equal(await watcher.req('auth-events', [{ kinds: [22242] }]), [], 'stored kind-22242 events')
  const auth = sign([['relay', node.url], ['challenge', 'not-asked-for']], '', 22242, unixNow())
  await expectRefused(main, ['EVENT', auth], auth.id, 'a kind-22242 EVENT')
  await watcher.expectSilence(700, 'after the kind-22242 EVENT')
})

test('a fresh connection can publish and read; nothing stored was lost', async () => {
  node.assertAlive()
  const c = await client()
  await publishOk(c, sign([['t', 'fresh']]), 'an event on a fresh connection')
  await expectStored(c, 'all', { limit: 5000 }, 'every stored event')
  c.send(['COUNT', 'n', {}])
  equal(await c.next(5000), ['COUNT', 'n', { count: stored.size }], 'COUNT of every stored event')
})

test('after a restart every stored event is still there', async () => {
  for (const c of clients.splice(0)) await c.close()
  await node.stop()
  await node.start()
  const c = await client()
  await expectStored(c, 'all', { limit: 5000 }, 'every stored event after restart')
})

test('node stops cleanly on SIGTERM (exit code 0)', async () => {
  for (const c of clients.splice(0)) await c.close()
  await node.stop()
})

cleanup(() => node.kill())

await run({ deadline: 240000 })
