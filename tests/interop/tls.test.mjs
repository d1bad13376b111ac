// A `ferry node` serving its relay over TLS ([relay.tls]) as a Nostr client
// sees it: nostr-tools' Relay (on `ws`, trusting a CA the test makes with the
// openssl command line) publishes and reads back over wss://, NIP-11 comes over
// https:// on the same port, plain ws:// or an untrusting client is refused, and
// those failed handshakes show in /metrics.
//
// Run: node tls.test.mjs <path-to-ferry-binary>
import { execFileSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { get as httpsGet } from 'node:https'
import { join } from 'node:path'
import { finalizeEvent, generateSecretKey, getPublicKey } from 'nostr-tools/pure'
import { Relay, useWebSocketImplementation } from 'nostr-tools/relay'
import {
  WebSocket, check, cleanup, equal, ferryBinary, makeNode, makeTempDir, run, show, test, unixNow, withTimeout,
} from './lib.mjs'

const binary = ferryBinary()

// -- a throwaway PKI -----------------------------------------------------------

const pkiDir = makeTempDir('ferry-interop-pki-')
const file = (name) => join(pkiDir, name)
const openssl = (...args) => execFileSync('openssl', args, { stdio: ['ignore', 'pipe', 'pipe'] })
openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
  '-keyout', file('ca.key'), '-out', file('ca.pem'), '-days', '1', '-subj', '/CN=ferry interop CA',
  '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign')
openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
  '-keyout', file('server.key'), '-out', file('server.csr'), '-subj', '/CN=localhost')
writeFileSync(file('server.ext'),
  'basicConstraints=CA:FALSE\nsubjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n')
openssl('x509', '-req', '-in', file('server.csr'), '-CA', file('ca.pem'), '-CAkey', file('ca.key'),
  '-CAcreateserial', '-out', file('server.pem'), '-days', '1', '-extfile', file('server.ext'))
const ca = readFileSync(file('ca.pem'))

// nostr-tools opens sockets with `new WebSocket(url)`; this one trusts the CA.
class TrustingWebSocket extends WebSocket {
  constructor(url, protocols) {
    super(url, protocols, { ca })
  }
}
useWebSocketImplementation(TrustingWebSocket)

const node = makeNode({
  binary,
  name: 'tls-node',
  sections: { 'relay.tls': { certfile: file('server.pem'), keyfile: file('server.key') } },
})
const wssUrl = () => `wss://127.0.0.1:${node.port}`
const relays = []
cleanup(() => {
  for (const r of relays) r.close()
})

/** The outcome of one connection attempt with `ws` directly: 'open' or the error. */
function tryConnect(url, options = {}) {
  return withTimeout(new Promise((resolve) => {
    const ws = new WebSocket(url, options)
    ws.on('open', () => {
      ws.terminate()
      resolve('open')
    })
    ws.on('error', (err) => resolve(err))
  }), 10000, `connecting to ${url}`)
}

test('the node starts and logs a wss:// listener', async () => {
  await node.start()
  check(node.logs.some((l) => l.includes(`relay-server listening on wss://127.0.0.1:${node.port}`)),
    `a "listening on wss://" line, got ${show(node.logs.slice(-5))}`)
}, { fatal: true })

test('nostr-tools publishes over wss and reads the event back', async () => {
  const sk = generateSecretKey()
  const relay = await withTimeout(Relay.connect(wssUrl(), { enablePing: false }), 5000, `Relay.connect(${wssUrl()})`)
  relays.push(relay)
  const event = finalizeEvent({ kind: 1, created_at: unixNow(), tags: [], content: 'hello over tls' }, sk)
  await withTimeout(relay.publish(event), 10000, 'publish over wss')
  const got = await withTimeout(new Promise((resolve) => {
    const events = []
    const sub = relay.subscribe([{ authors: [getPublicKey(sk)] }], {
      onevent: (e) => events.push(e),
      oneose: () => {
        sub.close()
        resolve(events)
      },
    })
  }), 10000, 'REQ over wss')
  equal(got.map((e) => e.id), [event.id], 'the published event comes back')
})

test('NIP-11 is served over https on the relay port', async () => {
  const info = await withTimeout(new Promise((resolve, reject) => {
    httpsGet(`https://localhost:${node.port}/`, { ca, headers: { Accept: 'application/nostr+json' } }, (res) => {
      let body = ''
      res.on('data', (chunk) => (body += chunk))
      res.on('end', () => resolve({ status: res.statusCode, type: res.headers['content-type'], body }))
    }).on('error', reject)
  }), 10000, 'GET https://localhost/ for NIP-11')
  equal(info.status, 200, 'NIP-11 status')
  check(info.type.startsWith('application/nostr+json'), `NIP-11 content type, got ${info.type}`)
  const doc = JSON.parse(info.body)
  check(Array.isArray(doc.supported_nips) && doc.supported_nips.includes(11), `a NIP-11 document, got ${show(doc)}`)
})

test('plain ws:// and a client without the CA are refused', async () => {
  const plain = await tryConnect(`ws://127.0.0.1:${node.port}`)
  check(plain !== 'open', 'plain ws:// must not open on a TLS port')
  const untrusting = await tryConnect(wssUrl())
  check(untrusting !== 'open', 'a client that does not trust the CA must not connect')
  check(/self[- ]signed|unable to verify|certificate/i.test(String(untrusting?.message)),
    `a certificate error, got ${show(String(untrusting?.message))}`)
  // The node carries on serving trusted clients.
  equal(await tryConnect(wssUrl(), { ca }), 'open', 'a trusting client still connects')
})

test('failed handshakes are counted in /metrics', async () => {
  const line = node.logs.find((l) => /control-plane listening on http:\/\/127\.0\.0\.1:\d+/.test(l))
  check(line, 'the "control-plane listening" log line')
  const adminPort = Number(line.match(/listening on http:\/\/127\.0\.0\.1:(\d+)/)[1])
  const res = await fetch(`http://127.0.0.1:${adminPort}/metrics`, { signal: AbortSignal.timeout(10000) })
  equal(res.status, 200, '/metrics status')
  const m = (await res.text()).match(/^ferry_relay_tls_handshake_failures_total (\S+)$/m)
  check(m, 'ferry_relay_tls_handshake_failures_total is exported')
  // The plain ws:// client and the one without the CA, at least.
  check(Number(m[1]) >= 2, `at least 2 failed handshakes counted, got ${m[1]}`)
})

test('the node stops cleanly', async () => {
  for (const r of relays.splice(0)) r.close()
  await node.stop()
})

await run()
