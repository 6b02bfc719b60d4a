// The trivial Node server of bench/load: `hello world` to every request.
// node hello.js [PORT]  (0 = a free port); prints `listening on PORT`.
const http = require('http');
const server = http.createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain' });
  res.end('hello world');
});
server.listen(Number(process.argv[2] || 0), '127.0.0.1', () => {
  console.log(`listening on ${server.address().port}`);
});
