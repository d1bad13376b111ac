#!/usr/bin/env node
// Reads every request and never answers.
process.stdin.on('data', () => {});
