// The Node server of the load tests: counts every request it receives by
// `METHOD /path`, keeps the last request to /echo, and serves a few framings.
// node server.js -> prints `listening on PORT` (a free port on 127.0.0.1).
//   GET /__stats        counts so far (not counted itself), as JSON
//   /status/NNN         answers with status NNN
//   /chunked            a chunked body (three writes, no Content-Length)
//   /close              answers with `Connection: close` (the server closes)
//   /echo               records method, headers and body
//   anything else       `hello world`
const http = require('http');
const counts = {};
let total = 0;
let echo = null;
const server = http.createServer((req, res) => {
  const path = req.url.split('?')[0];
  if (path === '/__stats') {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ total, counts, echo }));
    return;
  }
  total++;
  const key = `${req.method} ${path}`;
  counts[key] = (counts[key] || 0) + 1;
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    if (path === '/echo') {
      echo = { method: req.method, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
    }
    const status = path.match(/^\/status\/(\d{3})$/);
    if (status) {
      res.statusCode = Number(status[1]);
      res.end('status ' + status[1]);
    } else if (path === '/chunked') {
      res.write('one,');
      res.write('two,');
      res.end('three');
    } else if (path === '/close') {
      res.setHeader('connection', 'close');
      res.end('bye');
    } else {
      res.end('hello world');
    }
  });
});
server.keepAliveTimeout = 60000;
server.listen(0, '127.0.0.1', () => console.log(`listening on ${server.address().port}`));
