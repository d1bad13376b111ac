#!/usr/bin/env node
// Rejects everything, with the request's source fields in the message, so
// a test can see what the host sent.
const rl = require('readline').createInterface({ input: process.stdin, terminal: false });
rl.on('line', (line) => {
  const req = JSON.parse(line);
  const msg = `blocked: ${req.type} ${req.sourceType} ${req.sourceInfo} ${req.authed || '-'} ${typeof req.receivedAt}`;
  process.stdout.write(JSON.stringify({ id: req.event.id, action: 'reject', msg }) + '\n');
});
