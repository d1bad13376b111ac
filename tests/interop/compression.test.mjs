// permessage-deflate with clients that are not Beast: Node's `ws` inflates,
// with zlib, what the relay compressed (with context takeover, without it,
// with a smaller window), headless chromium does as a browser page, and a
// client that does not offer it gets plain frames; every event arrives as it
// was published.
//
// Run: node compression.test.mjs <path-to-ferry-binary>
import { finalizeEvent, generateSecretKey } from 'nostr-tools/pure'
import { createServer } from 'node:http'
import {
  RawClient, check, checkChromium, chromium, cleanup, equal, ferryBinary, makeNode, run, sameList, show, startsWith,
  test, unixNow,
} from './lib.mjs'

const binary = ferryBinary()
const node = makeNode({ binary, name: 'compression-node', relay: { compression: true } })
const sk = generateSecretKey()

/** Newest first, as a REQ serves them. */
const published = []

const clients = []
async function client(options) {
  const c = await RawClient.connect(node.url, 5000, options)
  clients.push(c)
  return c
}
cleanup(async () => {
  for (const c of clients) await c.close()
})

/** Random text with multibyte characters: it barely compresses. */
function randomText(size) {
  let text = ''
  while (text.length < size) text += Math.random() < 0.02 ? '€é' : String.fromCharCode(32 + Math.floor(Math.random() * 95))
  return text.slice(0, size)
}

/** The permessage-deflate parameters `ws` accepted (none: not negotiated). */
function deflateParams(c) {
  return c.ws._extensions['permessage-deflate']?.params ?? null
}

/** An event's NIP-01 fields (nostr-tools adds a symbol to the ones it signs). */
function plain({ id, pubkey, created_at, kind, tags, content, sig }) {
  return { id, pubkey, created_at, kind, tags, content, sig }
}

async function expectAllServed(c, what) {
  // Twice: the second answer's messages can point back into the first's.
  for (const round of [1, 2]) {
    const events = await c.req(`all-${round}`, [{ kinds: [1], limit: 1000 }])
    sameList(events.map((e) => e.id), published.map((e) => e.id), `${what}, round ${round}: ids`)
    for (let i = 0; i < events.length; i++) equal(plain(events[i]), plain(published[i]), `${what}, round ${round}: event ${i}`)
  }
}

test('node starts with compression on', async () => {
  await node.start()
}, { fatal: true })

test('events of many sizes, repetitive and random, are published', async () => {
  const c = await client()
  const sizes = [0, 1, 125, 126, 1000, 5000, 65535, 70000]
  for (let i = 0; i < 48; i++) {
    const size = sizes[i % sizes.length]
    const content = i % 2 ? randomText(size) : 'the relay sends stored JSON '.repeat(size / 28 + 1).slice(0, size)
    const event = finalizeEvent({ kind: 1, created_at: unixNow() - 1000 + i, tags: [['t', 'deflate']], content }, sk)
    const r = await c.publish(event)
    check(r.ok, `event ${i}: expected OK true, got ${show(r.reason)}`)
    published.unshift(event)
  }
}, { fatal: true })

test('a client offering permessage-deflate with context takeover reads them all', async () => {
  const c = await client({ perMessageDeflate: true })
  const params = deflateParams(c)
  check(params !== null, 'permessage-deflate negotiated')
  equal(params.server_no_context_takeover, undefined, 'no server_no_context_takeover')
  await expectAllServed(c, 'context takeover')
})

test('a client asking for server_no_context_takeover reads them all', async () => {
  const c = await client({ perMessageDeflate: { serverNoContextTakeover: true } })
  check(deflateParams(c)?.server_no_context_takeover === true, `server_no_context_takeover in ${show(deflateParams(c))}`)
  await expectAllServed(c, 'no context takeover')
})

test('a client asking for a 512-byte window reads them all', async () => {
  const c = await client({ perMessageDeflate: { serverMaxWindowBits: 9 } })
  equal(deflateParams(c)?.server_max_window_bits, 9, 'server_max_window_bits')
  await expectAllServed(c, 'window 9')
})

/** A page that reads every kind-1 event twice over one WebSocket (the
 * second REQ's messages can point back into the first's) and posts what it
 * got, with the extensions the browser negotiated, to /result. Its image
 * stays loading until then: headless chromium's virtual time stands still
 * while a request is open, and WebSocket traffic alone would not hold it. */
function browserPage(url) {
  return `<!doctype html><meta charset="utf-8"><img src="/hold"><script>
const got = { first: [], second: [] }
const ws = new WebSocket(${JSON.stringify(url)})
const req = (sub) => ws.send(JSON.stringify(['REQ', sub, { kinds: [1], limit: 1000 }]))
const report = (body) => fetch('/result', { method: 'POST', body })
ws.onopen = () => req('first')
ws.onerror = () => report('websocket error')
ws.onmessage = (m) => {
  const msg = JSON.parse(m.data)
  if (msg[0] === 'EVENT') got[msg[1]].push(msg[2])
  else if (msg[0] === 'EOSE' && msg[1] === 'first') req('second')
  else if (msg[0] === 'EOSE') report(JSON.stringify({ extensions: ws.extensions, ...got }))
  else report('unexpected ' + m.data.slice(0, 200))
}
</script>`
}

/** Serves the page and takes its report; resolves with the report once
 * chromium has been run on the page. */
async function reportOfBrowserPage() {
  let report = null
  let release
  const reported = new Promise((resolvePromise) => { release = resolvePromise })
  const server = createServer((req, res) => {
    if (req.url === '/page') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(browserPage(node.url))
    } else if (req.url === '/hold') {
      reported.then(() => res.writeHead(204).end())
    } else if (req.url === '/result' && req.method === 'POST') {
      const chunks = []
      req.on('data', (c) => chunks.push(c))
      req.on('end', () => {
        report = Buffer.concat(chunks).toString('utf8')
        res.writeHead(204).end()
        release()
      })
    } else {
      res.writeHead(404).end()
    }
  })
  await new Promise((resolvePromise) => server.listen(0, '127.0.0.1', resolvePromise))
  // A page that never reports must not hold the browser past the test.
  const giveUp = setTimeout(release, 30000)
  try {
    await chromium(`http://127.0.0.1:${server.address().port}/page`, [])
  } finally {
    clearTimeout(giveUp)
    release()
    server.closeAllConnections()
    server.close()
  }
  return report
}

test('chromium negotiates permessage-deflate and reads them all', async () => {
  await checkChromium()
  const report = await reportOfBrowserPage()
  check(report?.startsWith('{'), `the page reported ${show(report?.slice(0, 300) ?? 'nothing')}`)
  const got = JSON.parse(report)
  startsWith(got.extensions, 'permessage-deflate', 'the extensions chromium negotiated')
  for (const round of ['first', 'second']) {
    sameList(got[round].map((e) => e.id), published.map((e) => e.id), `${round} REQ: ids`)
    for (let i = 0; i < got[round].length; i++) equal(plain(got[round][i]), plain(published[i]), `${round} REQ: event ${i}`)
  }
}, { timeout: 90000 })

test('a client that does not offer it reads them all, uncompressed', async () => {
  const c = await client()
  equal(deflateParams(c), null, 'permessage-deflate negotiated')
  await expectAllServed(c, 'no deflate')
})

test('node stops cleanly on SIGTERM (exit code 0)', async () => {
  for (const c of clients.splice(0)) await c.close()
  await node.stop()
})

cleanup(() => node.kill())

await run({ deadline: 120000 })
