// The kind of client for bench_req: a Node.js program paging a relay
// with `limit` + `until` through nostr-tools' relay class, as nostr-fetch
// and most clients page. strfry's 71k events/s in issue 13 was measured with
// such a client, so this is the figure to set beside it; bench_req's C++
// client measures what the node alone can serve.
//
// Like that client it trusts the relay's signatures (nostr-tools would
// otherwise check each one in JavaScript, ~1 ms) and dedupes by id; `ws`
// offers permessage-deflate unless told not to, as browsers do.
//
//   node bench/req_pager.mjs <ws-url> <page limit> <deflate: 0|1>
// prints one JSON line: events, reqs, seconds, client CPU seconds, the share
// of the wall time its event loop was busy, the first-event latency of each
// REQ in ms, the extensions agreed. The CPU counts every thread (V8's
// garbage collector has helpers); the event loop is the one thread that
// handles the messages, so it alone says how long the client waited.
import { createRequire } from 'node:module'
import { performance } from 'node:perf_hooks'

// nostr-tools and ws come from the interop tests' pinned install.
const require = createRequire(new URL('../tests/interop/package.json', import.meta.url))
const WebSocket = require('ws')
const { AbstractRelay } = require('nostr-tools/abstract-relay')

const [url, limitText, deflateText] = process.argv.slice(2)
const limit = Number(limitText)
if (!url || !(limit > 0) || !['0', '1'].includes(deflateText)) {
  console.error('usage: node req_pager.mjs <ws-url> <page limit> <deflate: 0|1>')
  process.exit(2)
}
const deflate = deflateText === '1'

let socket
class PagerSocket extends WebSocket {
  constructor(address) {
    super(address, { perMessageDeflate: deflate })
    socket = this
  }
}

const relay = new AbstractRelay(url, {
  verifyEvent: () => true,
  websocketImplementation: PagerSocket,
})

/** One page: resolves with the events' count, the new ones and the oldest created_at. */
function page(filter, seen, firstEventMs) {
  return new Promise((resolve, reject) => {
    const sent = process.hrtime.bigint()
    let first = true
    let received = 0
    let fresh = 0
    let oldest = Infinity
    const noteFirst = () => {
      if (first) {
        firstEventMs.push(Number(process.hrtime.bigint() - sent) / 1e6)
        first = false
      }
    }
    const sub = relay.subscribe([filter], {
      onevent(event) {
        noteFirst()
        received++
        if (event.created_at < oldest) oldest = event.created_at
        if (!seen.has(event.id)) {
          seen.add(event.id)
          fresh++
        }
      },
      oneose() {
        noteFirst()
        sub.close()
        resolve({ received, fresh, oldest })
      },
      onclose(reason) {
        if (reason !== 'closed by caller') reject(new Error(`REQ closed: ${reason}`))
      },
    })
  })
}

await relay.connect()
const seen = new Set()
const firstEventMs = []
let reqs = 0
let until
const loopStart = performance.eventLoopUtilization()
const cpuStart = process.cpuUsage()
const start = process.hrtime.bigint()
for (;;) {
  const filter = until === undefined ? { limit } : { limit, until }
  reqs++
  const { received, fresh, oldest } = await page(filter, seen, firstEventMs)
  // A short page is the last; a page of nothing new would repeat forever.
  if (received < limit || fresh === 0) break
  until = oldest
}
const seconds = Number(process.hrtime.bigint() - start) / 1e9
const cpu = process.cpuUsage(cpuStart)
const loop = performance.eventLoopUtilization(loopStart)
const extensions = socket.extensions
relay.close()
console.log(JSON.stringify({
  events: seen.size,
  reqs,
  seconds,
  cpu_seconds: (cpu.user + cpu.system) / 1e6,
  event_loop_busy: loop.utilization,
  first_event_ms: firstEventMs,
  extensions,
}))
