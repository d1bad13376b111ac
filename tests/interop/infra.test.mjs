// The infra reconciler of `ferry node` against a zooid-style management API
// written here with nostr-tools: every request's NIP-98 header is checked with
// nostr-tools' own nip98 validation (and the payload tag against the raw
// body), the API answers like zooid (201 create, 200 update, 401 bad auth,
// 404 unknown, 409 conflict, 400 bad body) and can be told to fail the next N
// requests. Hosted relays are managed through the node's admin API.
//
// Run: node infra.test.mjs <path-to-ferry-binary>
import { createHash } from 'node:crypto'
import { createServer } from 'node:http'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { finalizeEvent, generateSecretKey, getPublicKey } from 'nostr-tools/pure'
import { getToken, unpackEventFromToken, validateEvent } from 'nostr-tools/nip98'
import {
  check, cleanup, equal, ferryBinary, makeNode, run, show, sleep, startsWith, test, waitFor,
} from './lib.mjs'

const binary = ferryBinary()
const TOKEN = 'interop-infra-token'
const OWNER = getPublicKey(generateSecretKey())
// Small delays so the retries of a whole test fit in seconds; the exact
// 30 s x 2^(n-1) schedule is asserted on CAF's test clock (infra_reconciler_test).
const RETRY_BASE_MS = 400
const RETRY_CAP_MS = 2000
const MAX_ATTEMPTS = 6
const retryDelay = (attempt) => Math.min(RETRY_BASE_MS * 2 ** (attempt - 1), RETRY_CAP_MS)

// -- the management API ----------------------------------------------------------

const nodeKey = generateSecretKey()
const nodePubkey = getPublicKey(nodeKey)

/** A zooid-style management API that records every request. */
class ManagementApi {
  constructor() {
    this.relays = new Map() // id -> config
    this.requests = [] // { method, path, body, at, status }
    this.authFailures = []
    this.failNext = 0 // answer the next N authenticated requests with 500
    this.server = createServer((req, res) => this.handle(req, res))
  }

  async listen() {
    await new Promise((resolve) => this.server.listen(0, '127.0.0.1', resolve))
    this.port = this.server.address().port
    return this
  }

  get url() {
    return `http://127.0.0.1:${this.port}`
  }

  close() {
    return new Promise((resolve) => this.server.close(resolve))
  }

  /** The requests for one relay (its members list excluded). */
  requestsFor(id) {
    return this.requests.filter((r) => r.path === `/relay/${id}`)
  }

  async handle(req, res) {
    const chunks = []
    for await (const chunk of req) chunks.push(chunk)
    const raw = Buffer.concat(chunks).toString('utf8')
    const answer = (status, body) => {
      record.status = status
      res.writeHead(status, { 'Content-Type': 'application/json' })
      res.end(JSON.stringify(body))
    }
    const record = { method: req.method, path: req.url, raw, body: null, at: Date.now(), status: 0 }
    this.requests.push(record)
    if (raw) {
      try {
        record.body = JSON.parse(raw)
      } catch {
        return answer(400, { error: 'invalid json' })
      }
    }
    const why = await this.checkAuth(req, raw, record.body)
    if (why) {
      this.authFailures.push(`${req.method} ${req.url}: ${why}`)
      return answer(401, { error: why })
    }
    if (this.failNext > 0) {
      this.failNext--
      return answer(500, { error: 'injected failure' })
    }
    const m = req.url.match(/^\/relay\/([^/]+)(\/members)?$/)
    if (!m) return answer(404, { error: 'not found' })
    const [, id, members] = m
    if (members) {
      if (req.method !== 'GET') return answer(405, { error: 'method not allowed' })
      if (!this.relays.has(id)) return answer(404, { error: 'relay not found' })
      return answer(200, { members: [OWNER] })
    }
    if (req.method === 'POST') {
      if (this.relays.has(id)) return answer(409, { error: 'relay with this id already exists' })
      const problem = this.invalid(record.body, true)
      if (problem) return answer(400, { error: problem })
      for (const other of this.relays.values())
        if (other.schema === record.body.schema || other.host === record.body.host)
          return answer(409, { error: 'schema or host is already in use' })
      this.relays.set(id, record.body)
      return answer(201, { message: 'relay created successfully' })
    }
    if (req.method === 'PATCH') {
      if (!this.relays.has(id)) return answer(404, { error: 'relay not found' })
      const problem = this.invalid(record.body, false)
      if (problem) return answer(400, { error: problem })
      this.relays.set(id, { ...this.relays.get(id), ...record.body })
      return answer(200, { message: 'relay patched successfully' })
    }
    return answer(405, { error: 'method not allowed' })
  }

  /** NIP-98 as zooid checks it, with nostr-tools' own validation. */
  async checkAuth(req, raw, body) {
    const header = req.headers.authorization
    if (!header || !header.startsWith('Nostr ')) return 'missing Nostr authorization'
    const url = `http://127.0.0.1:${this.port}${req.url}`
    try {
      const event = await unpackEventFromToken(header)
      await validateEvent(event, url, req.method, body ?? undefined)
      if (event.pubkey !== nodePubkey) return `signed by ${event.pubkey}, not the node`
      // NIP-98: the payload tag is the SHA-256 of the body bytes as sent.
      const payload = event.tags.find((t) => t[0] === 'payload')
      if (raw && (!payload || payload[1] !== createHash('sha256').update(raw).digest('hex')))
        return 'payload tag does not match the raw body'
      if (!raw && payload) return 'payload tag on a request without a body'
    } catch (err) {
      return err.message
    }
    return ''
  }

  invalid(body, create) {
    if (!body || typeof body !== 'object') return 'body must be an object'
    if (create) {
      if (typeof body.secret !== 'string' || !/^[0-9a-f]{64}$/.test(body.secret)) return 'secret is required'
      if (!body.host) return 'host is required'
      if (!body.schema) return 'schema is required'
      if (!body.info || !/^[0-9a-f]{64}$/.test(body.info.pubkey)) return 'info.pubkey is required'
    } else if ('secret' in body) {
      return 'a patch must not carry the secret'
    }
    return ''
  }
}

const api = await new ManagementApi().listen()

// -- the node ----------------------------------------------------------------------

const node = makeNode({ binary, name: 'infra-node' })
const keyFile = join(node.dir, 'node.key')
writeFileSync(keyFile, Buffer.from(nodeKey).toString('hex') + '\n', { mode: 0o600 })
node.configText = node.configText.replace('port = ADMIN_PORT', `port = ADMIN_PORT\ntoken = ${JSON.stringify(TOKEN)}`)
node.configText += [
  '[node]',
  `key_file = ${JSON.stringify(keyFile)}`,
  '[infra]',
  `api_url = ${JSON.stringify(api.url + '/')}`,
  'relay_domain = "relays.test"',
  `roles = { member = { pubkeys = [${JSON.stringify(OWNER)}], can_invite = true } }`,
  `retry_base_ms = ${RETRY_BASE_MS}`,
  `retry_cap_ms = ${RETRY_CAP_MS}`,
  `max_attempts = ${MAX_ATTEMPTS}`,
  'request_timeout_ms = 2000',
  '',
].join('\n')

let adminPort = null

/** Starts the node; @returns the time it was up (its reconciler started before). */
async function startNode() {
  const from = node.logs.length
  await node.start()
  const upAt = Date.now()
  const line = await waitFor(
    () => node.logs.slice(from).find((l) => /control-plane listening on http:\/\/127\.0\.0\.1:\d+/.test(l)),
    10000, 'the "control-plane listening" log line')
  adminPort = Number(line.match(/http:\/\/127\.0\.0\.1:(\d+)/)[1])
  return upAt
}

/** One admin request with the bearer token; the body parsed as JSON. */
async function admin(path, { method = 'GET', body } = {}) {
  const res = await fetch(`http://127.0.0.1:${adminPort}${path}`, {
    method,
    headers: { Authorization: `Bearer ${TOKEN}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    signal: AbortSignal.timeout(15000),
  })
  const text = await res.text()
  let json = text
  try {
    json = JSON.parse(text)
  } catch {}
  return { status: res.status, body: json }
}

function relayBody(id, extra = {}) {
  return { id, subdomain: id, schema: `${id}_db`, info: { name: `Relay ${id}`, pubkey: OWNER }, ...extra }
}

async function waitSynced(id, ms = 10000) {
  return waitFor(async () => {
    const r = await admin(`/api/v1/relays/${id}`)
    return r.status === 200 && r.body.synced === true ? r.body : null
  }, ms, `${id} synced`)
}

function expectError(r, status, field, what) {
  equal(r.status, status, `${what}: status (body ${show(r.body)})`)
  check(r.body?.error?.code === status && typeof r.body.error.message === 'string',
    `${what}: expected {"error":{"code":${status},...}}, got ${show(r.body)}`)
  if (field !== undefined) equal(r.body.error.field, field, `${what}: field`)
}

async function metric(name, labels = '') {
  const res = await fetch(`http://127.0.0.1:${adminPort}/metrics`, { signal: AbortSignal.timeout(10000) })
  const text = await res.text()
  const line = text.split('\n').find((l) => l.startsWith(name + labels + ' '))
  return line === undefined ? undefined : Number(line.split(' ').at(-1))
}

// -- tests -------------------------------------------------------------------------

test('the management API double refuses bad NIP-98 headers', async () => {
  const url = `${api.url}/relay/nope`
  const sign = (t) => finalizeEvent(t, nodeKey)
  const wrongUrl = await getToken(`${api.url}/relay/other`, 'GET', sign, true)
  const res = await fetch(url, { headers: { Authorization: wrongUrl } })
  equal(res.status, 401, 'a token for another URL')
  const stranger = await getToken(url, 'GET', (t) => finalizeEvent(t, generateSecretKey()), true)
  equal((await fetch(url, { headers: { Authorization: stranger } })).status, 401, 'a token of another key')
  const members = `${url}/members`
  equal((await fetch(members, { headers: { Authorization: await getToken(members, 'GET', sign, true) } })).status, 404,
    'a good token for an unknown relay')
  api.requests.length = 0
  api.authFailures.length = 0
}, { fatal: true })

test('node starts with the reconciler pointed at the API', async () => {
  await startNode()
  await waitFor(() => node.logs.find((l) => l.includes(`infra-reconciler pushes hosted relays to ${api.url}`)), 10000,
    'the reconciler log line')
  const actors = await admin('/api/v1/actors')
  const names = actors.body.map((a) => a.name)
  for (const name of ['relay-registry', 'infra-reconciler'])
    check(names.includes(name), `${name} is in the actor tree (got ${show(names)})`)
}, { fatal: true })

test('create: POST /relay/{id} with a fresh secret, signed with NIP-98', async () => {
  const created = await admin('/api/v1/relays', { method: 'POST', body: relayBody('club', { groups: { enabled: true } }) })
  equal(created.status, 201, `POST /api/v1/relays (body ${show(created.body)})`)
  equal(created.body.synced, false, 'a new relay is pending')
  const synced = await waitSynced('club')
  equal(synced.failed_attempts, 0, 'no failures')
  const posts = api.requestsFor('club')
  equal(posts.length, 1, 'one request')
  equal(posts[0].method, 'POST', 'a create')
  equal(posts[0].status, 201, 'answered 201')
  const body = posts[0].body
  check(/^[0-9a-f]{64}$/.test(body.secret), `a 64-hex secret, got ${show(body.secret)}`)
  equal(body.host, 'club.relays.test', 'host')
  equal(body.schema, 'club_db', 'schema')
  equal(body.inactive, false, 'inactive')
  equal(body.info, { name: 'Relay club', icon: '', pubkey: OWNER, description: '' }, 'info')
  equal(body.groups, { enabled: true }, 'groups')
  equal(body.roles, { member: { pubkeys: [OWNER], can_invite: true } }, 'roles from the config')
  equal(body.blossom, { enabled: false }, 'blossom')
  equal(body.livekit, { enabled: false }, 'livekit')
  // The secret is the management API's alone.
  check(!node.logs.some((l) => l.includes(body.secret)), 'the secret is not in the node log')
  const relay = await admin('/api/v1/relays/club')
  check(!JSON.stringify(relay.body).includes(body.secret), 'the secret is not in the admin API')
  equal(api.authFailures, [], 'every NIP-98 header validated')
})

test('update: PATCH without the secret; deactivate: inactive true', async () => {
  const updated = await admin('/api/v1/relays/club', { method: 'PATCH', body: { info: { name: 'Renamed' } } })
  equal(updated.status, 200, `PATCH /api/v1/relays/club (body ${show(updated.body)})`)
  await waitFor(() => api.requestsFor('club').length === 2, 10000, 'the PATCH')
  const patch = api.requestsFor('club')[1]
  equal(patch.method, 'PATCH', 'an update')
  check(!('secret' in patch.body), 'no secret in a PATCH')
  equal(patch.body.info.name, 'Renamed', 'the new name')
  await waitSynced('club')
  const off = await admin('/api/v1/relays/club/deactivate', { method: 'POST' })
  equal(off.status, 200, 'deactivate')
  equal(off.body.status, 'inactive', 'status inactive')
  await waitFor(() => api.requestsFor('club').length === 3, 10000, 'the PATCH after deactivate')
  equal(api.requestsFor('club')[2].body.inactive, true, 'inactive: true')
  await waitSynced('club')
  const on = await admin('/api/v1/relays/club/activate', { method: 'POST' })
  equal(on.status, 200, 'activate')
  await waitFor(() => api.requestsFor('club').length === 4, 10000, 'the PATCH after activate')
  equal(api.requestsFor('club')[3].body.inactive, false, 'inactive: false')
  await waitSynced('club')
  const log = await admin('/api/v1/relays/club/activity')
  equal(log.body.map((e) => e.type), [
    'create_relay', 'complete_relay_sync', 'update_relay', 'complete_relay_sync',
    'deactivate_relay', 'complete_relay_sync', 'activate_relay', 'complete_relay_sync',
  ], 'the activity log')
  const seqs = log.body.map((e) => e.seq)
  check(seqs.every((s, i) => i === 0 || s > seqs[i - 1]), `increasing sequence numbers, got ${show(seqs)}`)
  equal(api.authFailures, [], 'every NIP-98 header validated')
})

test('members come from the management API', async () => {
  const r = await admin('/api/v1/relays/club/members')
  equal(r.status, 200, `members (body ${show(r.body)})`)
  equal(r.body, { members: [OWNER] }, 'the API\'s answer')
  expectError(await admin('/api/v1/relays/nope/members'), 404, undefined, 'members of an unknown relay')
})

test('the admin API refuses bad input naming the field', async () => {
  expectError(await admin('/api/v1/relays', { method: 'POST', body: relayBody('club') }), 409, 'id', 'a second club')
  expectError(await admin('/api/v1/relays', { method: 'POST', body: relayBody('other', { subdomain: 'club' }) }), 409,
    'subdomain', 'a subdomain in use')
  expectError(await admin('/api/v1/relays', { method: 'POST', body: relayBody('bad', { subdomain: 'Not_A_Label' }) }), 400,
    'subdomain', 'a bad subdomain')
  expectError(await admin('/api/v1/relays', { method: 'POST', body: relayBody('bad', { status: 'paused' }) }), 400,
    'status', 'a bad status')
  expectError(await admin('/api/v1/relays', { method: 'POST', body: '{"id":' }), 400, 'body', 'broken JSON')
  expectError(await admin('/api/v1/relays/club', { method: 'PATCH', body: { schema: 'renamed' } }), 409, 'schema',
    'a schema change after a sync')
  expectError(await admin('/api/v1/relays/club', { method: 'PATCH', body: { blossom_enabled: true } }), 400,
    'blossom_enabled', 'blossom without a bucket')
  expectError(await admin('/api/v1/relays/nope'), 404, undefined, 'an unknown relay')
  expectError(await admin('/api/v1/relays/club', { method: 'POST' }), 405, undefined, 'POST on a relay')
  const list = await admin('/api/v1/relays')
  equal(list.body.map((r) => r.id), ['club'], 'nothing was created by the refused requests')
})

test('a POST answered 409 is followed by a PATCH', async () => {
  api.relays.set('taken', { host: 'taken.relays.test', schema: 'taken_db' })
  equal((await admin('/api/v1/relays', { method: 'POST', body: relayBody('taken') })).status, 201, 'create taken')
  await waitSynced('taken')
  equal(api.requestsFor('taken').map((r) => `${r.method} ${r.status}`), ['POST 409', 'PATCH 200'], 'the requests')
})

test('failures are retried with growing delays and given up after 6', async () => {
  api.failNext = 1000
  equal((await admin('/api/v1/relays', { method: 'POST', body: relayBody('shop') })).status, 201, 'create shop')
  await waitFor(() => api.requestsFor('shop').length >= MAX_ATTEMPTS, 30000, `${MAX_ATTEMPTS} attempts`)
  const attempts = api.requestsFor('shop')
  for (let n = 1; n < attempts.length; n++) {
    const waited = attempts[n].at - attempts[n - 1].at
    // A lower bound only: a busy machine may be late, never early.
    check(waited >= retryDelay(n) - 50, `retry ${n} came after ${waited} ms, expected ${retryDelay(n)} ms`)
  }
  check(attempts.every((r) => r.method === 'POST' && r.status === 500), 'every attempt a POST answered 500')
  // Given up: nothing more comes, however long we wait (three cap lengths).
  await sleep(3 * RETRY_CAP_MS)
  equal(api.requestsFor('shop').length, MAX_ATTEMPTS, 'no attempt after the last')
  const relay = await admin('/api/v1/relays/shop')
  equal(relay.body.failed_attempts, MAX_ATTEMPTS, 'failed_attempts')
  equal(relay.body.given_up, true, 'given_up')
  startsWith(relay.body.sync_error, 'POST /relay/shop: HTTP 500', 'sync_error')
  const health = await fetch(`http://127.0.0.1:${adminPort}/health`).then(async (r) => ({ status: r.status, body: await r.json() }))
  equal(health.status, 503, `/health status (body ${show(health.body)})`)
  check(health.body.reasons.some((r) => r.includes('shop') && r.includes('given up')),
    `/health names shop, got ${show(health.body)}`)
  equal(await metric('ferry_infra_relays_given_up'), 1, 'ferry_infra_relays_given_up')
  check(await metric('ferry_infra_retries_scheduled_total') >= MAX_ATTEMPTS - 1, 'ferry_infra_retries_scheduled_total')
  check(await metric('ferry_infra_syncs_total', '{result="failed"}') >= MAX_ATTEMPTS, 'failed syncs counted')
  // club four times, taken once.
  check(await metric('ferry_infra_syncs_total', '{result="ok"}') >= 5, 'ok syncs counted')
  equal(api.authFailures, [], 'every NIP-98 header validated')
}, { timeout: 60000 })

test('a restart mid-retry resumes the schedule from the activity log', async () => {
  api.failNext = 1000
  equal((await admin('/api/v1/relays', { method: 'POST', body: relayBody('cafe') })).status, 201, 'create cafe')
  await waitFor(async () => (await admin('/api/v1/relays/cafe')).body.failed_attempts === 3, 20000, 'three failures')
  await node.stop()
  const before = api.requestsFor('cafe').length
  equal(before, 3, 'three attempts before the restart')
  api.failNext = 0
  const upAt = await startNode()
  await waitSynced('cafe', 20000)
  const attempts = api.requestsFor('cafe')
  equal(attempts.length, 4, 'one more attempt after the restart')
  const waited = attempts[3].at - upAt
  // After three failures the next attempt waits retryDelay(3); a schedule
  // started over would have come after retryDelay(1).
  check(waited >= retryDelay(3) - 100, `the attempt after the restart came ${waited} ms after start, ` +
    `expected at least ${retryDelay(3)} ms`)
  equal(attempts[3].method, 'POST', 'still a create')
  const log = await admin('/api/v1/relays/cafe/activity')
  equal(log.body.map((e) => e.type), [
    'create_relay', 'fail_relay_sync', 'fail_relay_sync', 'fail_relay_sync', 'complete_relay_sync',
  ], 'the activity log')
  equal(log.body.filter((e) => e.type === 'fail_relay_sync').map((e) => e.failures), [1, 2, 3], 'failure counts')
  // The relay given up before the restart still is.
  const health = await fetch(`http://127.0.0.1:${adminPort}/health`).then((r) => r.json())
  check(health.reasons.some((r) => r.includes('shop')), `shop is still given up, got ${show(health)}`)
  equal(api.requestsFor('shop').length, MAX_ATTEMPTS, 'shop was not retried after the restart')
  // A change brings it back.
  equal((await admin('/api/v1/relays/shop', { method: 'PATCH', body: { info: { name: 'Shop' } } })).status, 200, 'patch shop')
  await waitSynced('shop')
  const ok = await fetch(`http://127.0.0.1:${adminPort}/health`).then((r) => r.status)
  equal(ok, 200, '/health ok again')
  equal(api.authFailures, [], 'every NIP-98 header validated')
}, { timeout: 60000 })

test('node stops cleanly on SIGTERM (exit code 0)', async () => {
  await node.stop()
})

cleanup(() => node.kill())
cleanup(() => api.close())

await run({ deadline: 200000 })
