// One local origin for every function, the way a deployment routes https://<host>/functions/v1/<name>
// to each worker (a Cloudflare route per function on one domain), and /rest/v1 to PostgREST as
// Supabase does, so that supabase-js works against the local stack unchanged. The path goes on
// whole: each worker serves its routes under /functions/v1/<name> itself.
import { createServer, request as forward } from 'node:http';

export function createRouter({ functions, postgrestUrl }) {
  const server = createServer((req, res) => {
    const url = new URL(req.url, 'http://router');
    const name = url.pathname.match(/^\/functions\/v1\/([^/]+)/)?.[1];
    let target;
    if (name && functions[name]) target = new URL(req.url, functions[name]);
    else if (url.pathname.startsWith('/rest/v1/')) target = new URL(req.url.replace(/^\/rest\/v1/, ''), postgrestUrl);
    if (!target) {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 'not_found', message: `No function or API at ${url.pathname}.`, details: {} } }));
      return;
    }
    const upstream = forward(target, { method: req.method, headers: { ...req.headers, host: target.host } }, (answer) => {
      res.writeHead(answer.statusCode, answer.headers);
      answer.pipe(res);
    });
    upstream.on('error', () => {
      res.writeHead(502, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 'upstream', message: `${target.origin} did not answer.`, details: {} } }));
    });
    req.pipe(upstream);
  });
  return {
    listen: (port) => new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve(server.address().port));
    }),
    close: () => new Promise((resolve) => { server.closeAllConnections?.(); server.close(() => resolve()); }),
  };
}
