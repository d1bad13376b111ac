#!/usr/bin/env node
// The same rules as keyword.sh, in Node, as strfry's docs/plugins.md writes
// plugins: reject "spam", shadow-reject "shadow", accept the rest. It also
// answers out of order (every other answer waits a little), which the host
// must match by id.
const rl = require('readline').createInterface({ input: process.stdin, terminal: false });

let n = 0;
rl.on('line', (line) => {
  const req = JSON.parse(line);
  if (req.type !== 'new') {
    console.error('unexpected request type');
    return;
  }
  const res = { id: req.event.id };
  if (req.event.content.includes('spam')) {
    res.action = 'reject';
    res.msg = 'blocked: no spam here';
  } else if (req.event.content.includes('shadow')) {
    res.action = 'shadowReject';
  } else {
    res.action = 'accept';
  }
  const answer = () => process.stdout.write(JSON.stringify(res) + '\n');
  if (n++ % 2 === 0) setTimeout(answer, 20);
  else answer();
});
