'use strict';
// Code under test for the runner tests: one leaky and one clean version of
// each thing the helpers check. The tests assert leakhound names these lines.
const { EventEmitter } = require('events');
const http = require('http');

class Entry {
  constructor(id) {
    this.id = id;
    this.body = `entry ${id} `.repeat(8);
  }
}
const entries = []; // grows forever: the leak expectNoLeak must find
function leakyRemember(i) {
  entries.push(new Entry(i));
}
function cleanRemember(i) {
  const recent = [new Entry(i), new Entry(i + 1)];
  return recent.length;
}

const bus = new EventEmitter();
bus.setMaxListeners(0);
function leakyMount() {
  bus.on('tick', function onTick() {});
}
function cleanMount() {
  const onTick = () => {};
  bus.on('tick', onTick);
  return () => bus.off('tick', onTick);
}

const leftOpen = []; // so the test can close what the leaky version left open
function leakyPoll() {
  leftOpen.push(setInterval(function poll() {}, 60000));
}
async function cleanServer() {
  const server = http.createServer(function onRequest(req, res) {
    res.end('ok');
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const timer = setInterval(function poll() {}, 60000);
  return async () => {
    clearInterval(timer);
    await new Promise((resolve) => server.close(resolve));
  };
}

function cleanupLeaks() {
  entries.length = 0;
  bus.removeAllListeners('tick');
  for (const t of leftOpen.splice(0)) clearInterval(t);
}

module.exports = { leakyRemember, cleanRemember, leakyMount, cleanMount, leakyPoll, cleanServer, cleanupLeaks, bus };
