// Signs events with nostr-tools and writes them as JSONL for the C++ tests in
// tests/messages/, which check that Ferry recomputes every id byte for byte
// and verifies every signature. Run `npm install && node make_vectors.mjs`
// here after changing the templates; commit the output, so the C++ tests
// never need npm.
import { writeFileSync } from 'node:fs'
import { finalizeEvent, generateSecretKey, getPublicKey, verifyEvent } from 'nostr-tools/pure'

const out = new URL('../messages/vectors/', import.meta.url)

// Contents chosen for the escaping rules of NIP-01 (which are JSON.stringify's):
// control bytes, the short escapes, and characters that must stay verbatim.
const contents = [
  'plain ascii text',
  '',
  'nul \u0000 soh \u0001 us \u001f',
  'del \u007f and c1 \u0080\u009f',
  'backspace \b formfeed \f cr \r tab \t newline \n end',
  'quote " backslash \\ both \\"',
  'slash / and </script>',
  'line separator \u2028 paragraph separator \u2029',
  'emoji 😀 zwj family 👩‍👩‍👧‍👦 flag 🏳️‍🌈',
  'CJK 日本語のテキスト 中文 한국어',
]
contents.push(Array.from({ length: 400 }, (_, i) => contents[i % contents.length]).join(' | '))

const someId = 'b12e1d13848d47e28f912bb0a8b3d6b211d1af97f60e9e10b9cf5df9e5c731ed'
const somePubkey = '35d26e4690cbe1a898af61cc3515661eb5fa763b57bd0b42e45099c8b32fd50f'

const tagSets = [
  [],
  [['e', someId, 'wss://relay.example.com', 'reply'], ['p', somePubkey]],
  [['d', 'slug'], ['t', 'nostr'], ['expiration', '1700000000'], ['subject', 'quote " \\ \n\t']],
  [['single'], ['x', '\u0000\u001f\u007f\u2028'], ['emoji', '😀', ''], ['a', `30023:${somePubkey}:slug`]],
]

const kinds = [1, 0, 30023, 10002, 20001, 65535]
const createdAts = [1700000000, 0, 1, 9007199254740991]

const keys = Array.from({ length: 3 }, () => generateSecretKey())

const lines = []
let n = 0
for (const content of contents) {
  for (const tags of tagSets) {
    const sk = keys[n % keys.length]
    const event = finalizeEvent(
      { kind: kinds[n % kinds.length], created_at: createdAts[n % createdAts.length], tags, content },
      sk,
    )
    if (!verifyEvent(event) || event.pubkey !== getPublicKey(sk)) throw new Error(`event ${n} does not verify`)
    // Field order as NIP-01 lists it; JSON.stringify keeps insertion order.
    const { id, pubkey, created_at, kind, sig } = event
    lines.push(JSON.stringify({ id, pubkey, created_at, kind, tags: event.tags, content: event.content, sig }))
    ++n
  }
}
writeFileSync(new URL('nostr_tools_events.jsonl', out), lines.join('\n') + '\n')

// A lone surrogate is a valid JS string that nostr-tools signs, but it is not
// Unicode text and simdjson refuses it; Ferry's tests pin that refusal.
const lone = finalizeEvent({ kind: 1, created_at: 1700000000, tags: [], content: 'lone \ud800 surrogate' }, keys[0])
if (!verifyEvent(lone)) throw new Error('lone surrogate event does not verify')
writeFileSync(new URL('nostr_tools_lone_surrogate.json', out), JSON.stringify(lone) + '\n')

console.log(`wrote ${lines.length} events and 1 lone-surrogate event to ${out.pathname}`)
