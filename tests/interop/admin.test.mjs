// The admin HTTP API of `ferry node` as an operator's tooling sees it: /health
// as JSON, /metrics read by a real Prometheus text parser, and /api/v1 behind a
// bearer token or NIP-98 events made by nostr-tools' own `nip98.getToken`
// (tampered ones are refused).
//
// Run: node admin.test.mjs <path-to-ferry-binary>
import { finalizeEvent, generateSecretKey, getPublicKey } from 'nostr-tools/pure'
import { getToken } from 'nostr-tools/nip98'
import parsePrometheusTextFormat from 'parse-prometheus-text-format'
import {
  RawClient, check, cleanup, equal, ferryBinary, makeNode, run, show, startsWith, test, unixNow, waitFor,
} from './lib.mjs'

const binary = ferryBinary()
const TOKEN = 'interop-admin-token'
const admin = { sk: generateSecretKey() }
admin.pk = getPublicKey(admin.sk)
const stranger = generateSecretKey()

const node = makeNode({ binary, name: 'admin-node' })
// The helper writes an [admin] section with a free port; the token and the
// NIP-98 key go into that section.
const adminPortLine = 'port = ADMIN_PORT'
check(node.configText.includes(adminPortLine), `the helper's config has "${adminPortLine}"`)
node.configText = node.configText.replace(adminPortLine, [
  adminPortLine,
  `token = ${JSON.stringify(TOKEN)}`,
  `nip98_pubkeys = [${JSON.stringify(admin.pk)}]`,
].join('\n'))

let adminPort = null
const adminUrl = (path) => `http://127.0.0.1:${adminPort}${path}`

/** One request; returns status, content type and the body (parsed when JSON). */
async function request(path, { method = 'GET', headers = {} } = {}) {
  const res = await fetch(adminUrl(path), { method, headers, signal: AbortSignal.timeout(10000) })
  const text = await res.text()
  const type = res.headers.get('content-type') || ''
  let body = text
  if (type.startsWith('application/json')) {
    try {
      body = JSON.parse(text)
    } catch (err) {
      throw new Error(`${method} ${path}: body is not JSON: ${show(text)}`)
    }
  }
  return { status: res.status, type, body, headers: res.headers }
}

/** Asserts the API's error shape: {"error":{"code":N,"message":"..."}}. */
function expectError(r, status, what) {
  equal(r.status, status, `${what}: status (body ${show(r.body)})`)
  startsWith(r.type, 'application/json', `${what}: content type`)
  check(r.body && r.body.error && r.body.error.code === status && typeof r.body.error.message === 'string',
    `${what}: expected {"error":{"code":${status},"message":…}}, got ${show(r.body)}`)
  return r.body.error.message
}

const signWith = (sk) => (template) => finalizeEvent(template, sk)

/** `Nostr <base64>` for an event built and signed here, for tampering. */
function header(event) {
  return 'Nostr ' + Buffer.from(JSON.stringify(event)).toString('base64')
}

function decodeToken(value) {
  return JSON.parse(Buffer.from(value.replace(/^Nostr /, ''), 'base64').toString('utf8'))
}

test('node starts and logs its admin port', async () => {
  await node.start()
  const line = await waitFor(
    () => node.logs.find((l) => /control-plane listening on http:\/\/127\.0\.0\.1:\d+/.test(l)),
    10000, 'the "control-plane listening on http://127.0.0.1:<port>" log line')
  adminPort = Number(line.match(/control-plane listening on http:\/\/127\.0\.0\.1:(\d+)/)[1])
  check(adminPort > 0, `admin port ${adminPort}`)
}, { fatal: true })

test('/health is open on loopback and says ok', async () => {
  const r = await request('/health')
  equal(r.status, 200, `/health status (body ${show(r.body)})`)
  startsWith(r.type, 'application/json', '/health content type')
  equal(r.body, { status: 'ok', reasons: [] }, '/health body')
  expectError(await request('/health', { method: 'POST' }), 405, 'POST /health')
})

test('/api/v1/actors needs auth; the bearer token opens it', async () => {
  const none = await request('/api/v1/actors')
  expectError(none, 401, 'no Authorization')
  check(none.headers.get('www-authenticate'), '401 carries WWW-Authenticate')
  expectError(await request('/api/v1/actors', { headers: { Authorization: `Bearer ${TOKEN}x` } }), 401,
    'a wrong bearer token')
  const r = await request('/api/v1/actors', { headers: { Authorization: `Bearer ${TOKEN}` } })
  equal(r.status, 200, `GET /api/v1/actors with the token (body ${show(r.body)})`)
  check(Array.isArray(r.body) && r.body.length > 0, `an array of actors, got ${show(r.body)}`)
  const names = r.body.map((a) => a.name)
  for (const name of ['writer', 'inspector', 'control-plane'])
    check(names.includes(name), `actor ${name} is listed (got ${show(names)})`)
  for (const a of r.body) {
    check(typeof a.mailbox === 'number' && typeof a.restarts === 'number' && typeof a.state === 'string',
      `actor fields are typed: ${show(a)}`)
    check(a.status !== null && typeof a.status === 'object' && !Array.isArray(a.status),
      `actor status is an object: ${show(a)}`)
  }
  const one = await request('/api/v1/actors/writer', { headers: { Authorization: `Bearer ${TOKEN}` } })
  equal(one.status, 200, 'GET /api/v1/actors/writer')
  equal(one.body.name, 'writer', 'the one actor')
  expectError(await request('/api/v1/actors/no-such-actor', { headers: { Authorization: `Bearer ${TOKEN}` } }), 404,
    'an unknown actor')
})

test('NIP-98 tokens from nostr-tools getToken are accepted', async () => {
  const auth = await getToken(adminUrl('/api/v1/actors'), 'GET', signWith(admin.sk), true)
  startsWith(auth, 'Nostr ', 'getToken with the scheme')
  const r = await request('/api/v1/actors', { headers: { Authorization: auth } })
  equal(r.status, 200, `GET with NIP-98 (body ${show(r.body)})`)
  check(Array.isArray(r.body), 'an array of actors')

  const path = '/api/v1/actors/hub/restart'
  const post = await getToken(adminUrl(path), 'POST', signWith(admin.sk), true)
  const restarted = await request(path, { method: 'POST', headers: { Authorization: post } })
  equal(restarted.status, 200, `POST restart with NIP-98 (body ${show(restarted.body)})`)
  check(typeof restarted.body.result === 'string' && restarted.body.result.includes('hub'),
    `a one-line outcome naming hub, got ${show(restarted.body)}`)
})

test('tampered NIP-98 tokens are refused with 401', async () => {
  const path = '/api/v1/actors'
  const url = adminUrl(path)
  const cases = [
    ['a token for another URL', await getToken(adminUrl('/api/v1/actors/writer'), 'GET', signWith(admin.sk), true)],
    ['a token for another method', await getToken(url, 'POST', signWith(admin.sk), true)],
    ['a token from a key that is not allowed', await getToken(url, 'GET', signWith(stranger), true)],
    ['a stale token (created 2 minutes ago)', header(finalizeEvent({
      kind: 27235, created_at: unixNow() - 120, tags: [['u', url], ['method', 'GET']], content: '',
    }, admin.sk))],
    ['a token of the wrong kind', header(finalizeEvent({
      kind: 1, created_at: unixNow(), tags: [['u', url], ['method', 'GET']], content: '',
    }, admin.sk))],
  ]
  // A good token whose u tag was changed after signing: the id no longer matches.
  const forged = decodeToken(await getToken(url, 'GET', signWith(admin.sk), true))
  forged.tags = [['u', adminUrl('/api/v1/actors/writer')], ['method', 'GET']]
  cases.push(['a token edited after signing', header(forged)])
  cases.push(['a token that is not base64', 'Nostr not*base64'])
  for (const [what, auth] of cases) {
    const message = expectError(await request(path, { headers: { Authorization: auth } }), 401, what)
    check(message.length > 0, `${what}: the 401 says why`)
  }
})

test('/metrics parses with a Prometheus text parser and has the node metrics', async () => {
  // One event through the ingest path, so ferry_events_total has a sample.
  const c = await RawClient.connect(node.url)
  const event = finalizeEvent({ kind: 1, created_at: unixNow(), tags: [], content: 'metrics' }, admin.sk)
  const ok = await c.publish(event)
  check(ok.ok, `the event is stored (OK false ${show(ok.reason)})`)
  const r = await request('/metrics')
  await c.close()
  equal(r.status, 200, '/metrics status')
  startsWith(r.type, 'text/plain; version=0.0.4', '/metrics content type')
  let families
  try {
    families = parsePrometheusTextFormat(r.body)
  } catch (err) {
    throw new Error(`/metrics does not parse: ${err.message}; body: ${show(r.body, 3000)}`)
  }
  const byName = new Map(families.map((f) => [f.name, f]))
  for (const name of ['ferry_client_connections', 'ferry_events_total', 'ferry_actor_mailbox'])
    check(byName.has(name), `metric ${name} is exposed (got ${show([...byName.keys()])})`)
  equal(byName.get('ferry_client_connections').type, 'GAUGE', 'ferry_client_connections type')
  equal(byName.get('ferry_events_total').type, 'COUNTER', 'ferry_events_total type')
  const ingested = byName.get('ferry_events_total').metrics
    .filter((m) => m.labels.kind === '1')
    .reduce((n, m) => n + Number(m.value), 0)
  check(ingested >= 1, `ferry_events_total{kind="1"} counts our event, got ${show(byName.get('ferry_events_total'))}`)
  const mailboxes = byName.get('ferry_actor_mailbox').metrics.map((m) => m.labels.actor)
  check(mailboxes.includes('writer'), `ferry_actor_mailbox has the writer, got ${show(mailboxes)}`)
  for (const f of families)
    for (const m of f.metrics)
      if ('value' in m) check(!Number.isNaN(Number(m.value)), `${f.name}: sample value ${show(m.value)} is a number`)
})

test('node stops cleanly on SIGTERM (exit code 0)', async () => {
  await node.stop()
})

cleanup(() => node.kill())

await run({ deadline: 120000 })
