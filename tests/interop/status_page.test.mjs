// The status page (GET /status on the admin port) in a real headless browser,
// Debian's chromium: a node with two sync servers (one to a second real node,
// one to a closed port), two hosted relays and that second node as a
// federation peer (pending its approval) is rendered with --dump-dom, and
// the rendered values are checked against the JSON API; a wrong token and an
// unreachable node are shown as such; a screenshot is kept in the build dir
// (status-page.png) as the test's artifact; the members of a two-node cluster
// are checked the same way.
//
// Run: node status_page.test.mjs <path-to-ferry-binary>
import { existsSync, readFileSync, rmSync, statSync } from 'node:fs'
import { createServer as createHttpServer } from 'node:http'
import { createServer as createTcpServer } from 'node:net'
import { dirname, join, resolve } from 'node:path'
import { finalizeEvent, generateSecretKey, getPublicKey } from 'nostr-tools/pure'
import {
  RawClient, check, checkChromium, chromium, cleanup, equal, ferryBinary, makeNode, run, sameSet, show, test,
  unixNow, waitFor,
} from './lib.mjs'

const binary = ferryBinary()
const TOKEN = 'status-page-token'
// The artifact goes next to the binary under test: the build dir.
const SCREENSHOT = join(dirname(resolve(process.argv[2] || binary)), 'status-page.png')

// -- the browser ---------------------------------------------------------------

const dumpDom = (url) => chromium(url, ['--dump-dom'])

// -- reading the rendered page -----------------------------------------------------

function text(html) {
  return html.replace(/<[^>]*>/g, '').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'").replace(/&amp;/g, '&').trim()
}

/** The text of the element with `id`, or undefined. */
function byId(dom, id) {
  const m = dom.match(new RegExp(`<(\\w+)[^>]* id="${id}"[^>]*>(.*?)</\\1>`, 's'))
  return m ? text(m[2]) : undefined
}

/** The rows with `data-<attr>`: key -> { field: text }. */
function rows(dom, attr) {
  const result = new Map()
  for (const [, key, inner] of dom.matchAll(new RegExp(`<tr data-${attr}="([^"]*)">(.*?)</tr>`, 'gs'))) {
    const cells = {}
    for (const [, field, cell] of inner.matchAll(/<td data-field="([a-z_]+)"[^>]*>(.*?)<\/td>/gs)) cells[field] = text(cell)
    result.set(text(key), cells)
  }
  return result
}

/** The text of the note a section shows when its subsystem is off. */
function emptyNote(dom, section) {
  const m = dom.match(new RegExp(`<p [^>]*data-empty="${section}"[^>]*>(.*?)</p>`, 's'))
  return m ? text(m[1]) : undefined
}

function bodyState(dom) {
  return dom.match(/<body data-state="([a-z]+)"/)?.[1]
}

// -- the remotes ---------------------------------------------------------------------

/** A management API double that accepts every push (infra.test.mjs checks the real exchange). */
const api = createHttpServer((req, res) => {
  req.resume()
  req.on('end', () => {
    res.writeHead(req.method === 'POST' ? 201 : 200, { 'Content-Type': 'application/json' })
    res.end(req.url.endsWith('/members') ? '{"members":[]}' : '{"message":"ok"}')
  })
})
await new Promise((done) => api.listen(0, '127.0.0.1', done))
cleanup(() => new Promise((done) => api.close(done)))

/** A loopback port nothing listens on (now). */
const freePort = () => new Promise((done) => {
  const probe = createTcpServer().listen(0, '127.0.0.1', () => {
    const { port } = probe.address()
    probe.close(() => done(port))
  })
})
const closedPort = await freePort()

const upstream = makeNode({ binary, name: 'upstream', sections: { federation: { enabled: true } } })
const node = makeNode({ binary, name: 'status-node' })
let adminPort = null

async function admin(path, { method = 'GET', body, port = adminPort } = {}) {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, {
    method,
    headers: { Authorization: `Bearer ${TOKEN}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(15000),
  })
  const raw = await res.text()
  let json = raw
  try {
    json = JSON.parse(raw)
  } catch {}
  return { status: res.status, body: json }
}

const pageUrl = (token, port = adminPort) => `http://127.0.0.1:${port}/status#token=${encodeURIComponent(token)}`
const withToken = (ferry) => {
  ferry.configText = ferry.configText.replace('port = ADMIN_PORT', `port = ADMIN_PORT\ntoken = ${JSON.stringify(TOKEN)}`)
}

// -- tests ---------------------------------------------------------------------------

test('chromium is installed', checkChromium, { fatal: true })

/** The admin port a node logged since its log line `from`. */
async function adminPortOf(ferry, from) {
  const line = await waitFor(() => ferry.logs.slice(from).find((l) => /control-plane listening on http:\/\/127\.0\.0\.1:\d+/.test(l)),
    10000, `${ferry.name}: the "control-plane listening" log line`)
  return Number(line.match(/127\.0\.0\.1:(\d+)/)[1])
}

test('a node with two sync servers, two hosted relays and a federation peer', async () => {
  await upstream.start()
  const upstreamAdmin = await adminPortOf(upstream, 0)
  const author = generateSecretKey()
  const client = await RawClient.connect(upstream.url)
  for (let i = 0; i < 3; i++) {
    const event = finalizeEvent({ kind: 1, created_at: unixNow() - 60 + i, tags: [], content: `status ${i}` }, author)
    equal((await client.publish(event)).ok, true, 'publishing to the upstream node')
  }
  client.ws.close()
  withToken(node)
  node.configText += [
    '[infra]',
    `api_url = "http://127.0.0.1:${api.address().port}/"`,
    'relay_domain = "relays.test"',
    '[[sync.server]]', 'id = "upstream"', `url = "${upstream.url}"`, 'filters = [{ kinds = [1] }]',
    '[[sync.server]]', 'id = "offline"', `url = "ws://127.0.0.1:${closedPort}"`, 'filters = [{ kinds = [1] }]',
    '[federation]', 'enabled = true',
    '[[federation.peer]]', 'name = "upstream"', `endpoint = "${upstream.url}"`,
    `admin_url = "http://127.0.0.1:${upstreamAdmin}"`, 'filters = [{ kinds = [1] }]',
    '',
  ].join('\n')
  const from = node.logs.length
  await node.start()
  adminPort = await adminPortOf(node, from)
  const owner = getPublicKey(generateSecretKey())
  for (const id of ['club', 'lab']) {
    const created = await admin('/api/v1/relays', {
      method: 'POST', body: { id, subdomain: id, schema: `${id}_db`, info: { name: `The ${id}`, pubkey: owner } },
    })
    equal(created.status, 201, `creating hosted relay ${id} (${show(created.body)})`)
  }
  await waitFor(async () => {
    const relays = await admin('/api/v1/relays')
    return relays.body.length === 2 && relays.body.every((r) => r.synced === true)
  }, 15000, 'both hosted relays pushed')
  await waitFor(async () => {
    const servers = await admin('/api/v1/sync/servers')
    const up = servers.body.find((s) => s.id === 'upstream')
    return up?.runtime?.connected === true && up.runtime.accepted === 3
  }, 15000, 'upstream connected with its 3 events')
  // Registered with the upstream node, which waits for its operator's approval.
  await waitFor(async () => {
    const peers = await admin('/api/v1/federation/peers')
    return peers.body.peers?.[0]?.handshake?.http_status > 0
  }, 15000, 'the federation handshake with upstream')
}, { fatal: true, timeout: 60000 })

test('the rendered page shows what the JSON API says', async () => {
  const dom = await dumpDom(pageUrl(TOKEN))
  equal(bodyState(dom), 'ok', `the page's state (problem: ${show(byId(dom, 'problem'))})`)
  const [health, actors, servers, relays] = await Promise.all(
    ['/health', '/api/v1/actors', '/api/v1/sync/servers', '/api/v1/relays'].map((p) => admin(p)))

  equal(byId(dom, 'node-health'), health.body.status, 'the health badge')

  const actorRows = rows(dom, 'actor')
  sameSet([...actorRows.keys()], actors.body.map((a) => a.name), 'the actor tree')
  equal(byId(dom, 'actors')?.match(/(\d+) actors/)?.[1], String(actors.body.length), 'the actor count')
  for (const a of actors.body) {
    equal(actorRows.get(a.name).state, a.state, `actor ${a.name}: state`)
    equal(actorRows.get(a.name).restarts, String(a.restarts), `actor ${a.name}: restarts`)
  }

  const serverRows = rows(dom, 'server')
  sameSet([...serverRows.keys()], servers.body.map((s) => s.id), 'the sync servers')
  for (const s of servers.body) {
    const row = serverRows.get(s.id)
    equal(row.url, s.url, `server ${s.id}: url`)
    equal(row.connected, s.runtime.connected ? 'yes' : 'no', `server ${s.id}: connected`)
    equal(row.events, `${s.runtime.received} / ${s.runtime.accepted}`, `server ${s.id}: received / accepted`)
  }
  equal(serverRows.get('upstream').connected, 'yes', 'upstream is shown connected')
  equal(serverRows.get('upstream').health, 'live', 'upstream health')
  equal(serverRows.get('upstream').lag, '0 s (caught up)', 'upstream lag')
  check(serverRows.get('upstream').events.endsWith(' / 3'), `upstream accepted its 3 events: ${show(serverRows.get('upstream'))}`)
  equal(serverRows.get('offline').connected, 'no', 'offline is shown not connected')
  check(/connect 127\.0\.0\.1:\d+/.test(serverRows.get('offline').last_error),
    `offline shows why it fails: ${show(serverRows.get('offline'))}`)

  const relayRows = rows(dom, 'relay')
  sameSet([...relayRows.keys()], relays.body.map((r) => r.id), 'the hosted relays')
  for (const r of relays.body) {
    equal(relayRows.get(r.id).name, r.info.name, `relay ${r.id}: name`)
    equal(relayRows.get(r.id).synced, 'yes', `relay ${r.id}: pushed`)
  }

  // The subsystems that are off say so, with the API's own words.
  const [repos, cluster, federation] = await Promise.all(
    ['/api/v1/grasp/repos', '/api/v1/cluster', '/api/v1/federation/peers'].map((p) => admin(p)))
  equal(repos.status, 404, 'GET /api/v1/grasp/repos with GRASP off')
  equal(emptyNote(dom, 'grasp'), repos.body.error.message, 'GRASP section')
  equal(cluster.status, 404, 'GET /api/v1/cluster outside a cluster')
  equal(emptyNote(dom, 'cluster'), 'not in a cluster', 'cluster section')

  const peerRows = rows(dom, 'peer')
  sameSet([...peerRows.keys()], federation.body.peers.map((p) => p.name), 'the federation peers')
  for (const p of federation.body.peers) {
    equal(peerRows.get(p.name).status, p.status, `peer ${p.name}: status`)
    equal(peerRows.get(p.name).endpoint, p.endpoint, `peer ${p.name}: endpoint`)
  }
}, { timeout: 90000 })

test('a wrong token is shown as a 401, with the open health still there', async () => {
  const dom = await dumpDom(pageUrl('not-the-token'))
  equal(bodyState(dom), 'unauthorized', 'the page state')
  check(/^401: the admin API refused the token/.test(byId(dom, 'problem') ?? ''), `problem box: ${show(byId(dom, 'problem'))}`)
  equal(rows(dom, 'server').size, 0, 'no sync server rows')
  check(byId(dom, 'node-health') !== 'loading', 'health (open on loopback) is rendered')
}, { timeout: 90000 })

test('a node that stops answering is shown as unreachable', async () => {
  // The page as the node served it, from a server that then drops every API
  // request: a node gone after the page loaded.
  const page = await (await fetch(`http://127.0.0.1:${adminPort}/status`)).text()
  const gone = createHttpServer((req, res) => {
    if (req.url === '/status') {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' })
      res.end(page)
    } else {
      req.socket.destroy()
    }
  })
  await new Promise((done) => gone.listen(0, '127.0.0.1', done))
  try {
    const dom = await dumpDom(`http://127.0.0.1:${gone.address().port}/status#token=${TOKEN}`)
    equal(bodyState(dom), 'down', 'the page state')
    check(/^Cannot reach the node at 127\.0\.0\.1:\d+/.test(byId(dom, 'problem') ?? ''), `problem box: ${show(byId(dom, 'problem'))}`)
  } finally {
    await new Promise((done) => gone.close(done))
  }
}, { timeout: 90000 })

test('a screenshot of the page is kept in the build dir', async () => {
  rmSync(SCREENSHOT, { force: true })
  await chromium(pageUrl(TOKEN), ['--hide-scrollbars', '--window-size=1280,1900', `--screenshot=${SCREENSHOT}`])
  check(existsSync(SCREENSHOT), `no screenshot at ${SCREENSHOT}`)
  const png = readFileSync(SCREENSHOT)
  equal(png.subarray(1, 4).toString('latin1'), 'PNG', 'the screenshot is a PNG')
  check(statSync(SCREENSHOT).size > 20000, `the screenshot has content (${statSync(SCREENSHOT).size} bytes)`)
  console.log(`    screenshot: ${SCREENSHOT}`)
}, { timeout: 90000 })

test('cluster members are shown as the cluster view says', async () => {
  const [alphaPort, betaPort] = [await freePort(), await freePort()]
  const member = (name, port, seeds) => {
    const ferry = makeNode({ binary, name })
    withToken(ferry)
    ferry.configText += ['[cluster]', 'enabled = true', `name = "${name}"`, `port = ${port}`, `seeds = ${JSON.stringify(seeds)}`,
      'failure_timeout_ms = 2000', 'heartbeat_ms = 250', ''].join('\n')
    return ferry
  }
  const alpha = member('alpha', alphaPort, [])
  const beta = member('beta', betaPort, [`127.0.0.1:${alphaPort}`])
  await alpha.start()
  const alphaAdmin = await adminPortOf(alpha, 0)
  await beta.start()
  const view = await waitFor(async () => {
    const r = await admin('/api/v1/cluster', { port: alphaAdmin })
    return r.status === 200 && r.body.members.length === 2 && r.body.members.every((m) => m.state === 'alive') ? r.body : null
  }, 20000, 'alpha sees beta alive')
  const dom = await dumpDom(pageUrl(TOKEN, alphaAdmin))
  equal(bodyState(dom), 'ok', `the page's state (problem: ${show(byId(dom, 'problem'))})`)
  const memberRows = rows(dom, 'member')
  sameSet([...memberRows.keys()], view.members.map((m) => m.name), 'the cluster members')
  equal(memberRows.get('alpha').name, 'alpha (this node)', 'this node is marked')
  for (const m of view.members) {
    equal(memberRows.get(m.name).state, m.state, `member ${m.name}: state`)
    equal(memberRows.get(m.name).relay_url, m.relay_url, `member ${m.name}: relay URL`)
  }
  await beta.stop()
  await alpha.stop()
}, { timeout: 90000 })

test('the nodes stop cleanly', async () => {
  await node.stop()
  await upstream.stop()
}, { timeout: 40000 })

await run()
