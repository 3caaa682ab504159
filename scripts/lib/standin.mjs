// A local stand-in for the SaaS APIs the workers call and for operators' webhook receivers:
// Resend (POST /emails, POST /emails/batch), Daily.co (POST /v1/rooms, DELETE /v1/rooms/:name),
// Stripe (under /stripe: see stripe-standin.mjs) and any automation endpoint (POST /webhooks/:name). It records every request and answers as
// the real APIs document: Resend's Idempotency-Key replays the first answer for the same body and
// refuses another body under a used key (409 invalid_idempotent_request); Daily refuses a room
// name already taken (400) and answers 404 for a room that is gone.
//
// Control routes (for tests and developers):
//   GET  /__standin/requests[?service=email|daily|stripe|webhook]  what was received, oldest first
//   GET  /__standin/emails                           the emails accepted (one per idempotency key)
//   POST /__standin/fail {service, status, times, path}
//                                                    the next `times` requests to `service` (email,
//                                                    daily, stripe, webhook or postgrest) whose path contains
//                                                    `path` fail with `status` (0: the connection drops)
//   POST /__standin/delay {service, ms}              answer `service` only after `ms` milliseconds
//   POST /__standin/reset                            forget everything
//   /__standin/stripe/...                            Stripe's side of the payments (stripe-standin.mjs)
// It also serves the project's public signing keys, as Supabase Auth does:
//   GET  /auth/v1/.well-known/jwks.json
// and passes /rest/* through to PostgREST, so that tests can make the database unreachable for
// the workers at one exact step.
import { createServer, request as forward } from 'node:http';
import { randomUUID } from 'node:crypto';
import { createStripe, parseForm } from './stripe-standin.mjs';

export function createStandin({ jwks = { keys: [] }, postgrestUrl, stripe: stripeOptions } = {}) {
  const stripe = createStripe(stripeOptions ?? {});
  let requests = [];
  let emails = [];
  let idempotent = new Map();
  const noFailures = () => ({ email: [], daily: [], stripe: [], webhook: [], postgrest: [] });
  let failures = noFailures();
  let delays = {};
  const rooms = new Map();

  const send = (res, status, body, headers = {}) => {
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(body === undefined ? '' : JSON.stringify(body));
  };

  const acceptEmail = (message) => {
    const email = { id: randomUUID(), ...message, created_at: new Date().toISOString() };
    emails.push(email);
    return { id: email.id };
  };

  const handleEmail = (req, res, path, body, raw) => {
    const key = req.headers['idempotency-key'];
    const remembered = key && idempotent.get(`${path} ${key}`);
    if (remembered) {
      if (remembered.raw !== raw) {
        return send(res, 409, { statusCode: 409, name: 'invalid_idempotent_request', message: 'Same idempotency key used with a different request payload.' });
      }
      return send(res, 200, remembered.answer);
    }
    let answer;
    if (path === '/emails') {
      if (!body?.to || !body?.from || !body?.subject) return send(res, 422, { name: 'validation_error', message: 'to, from and subject are required' });
      answer = acceptEmail({ ...body, idempotency_key: key ?? null });
    } else {
      if (!Array.isArray(body) || body.length === 0 || body.length > 100) return send(res, 422, { name: 'validation_error', message: 'a batch holds 1 to 100 emails' });
      answer = { data: body.map((message, index) => acceptEmail({ ...message, idempotency_key: key ? `${key}#${index}` : null })) };
    }
    if (key) idempotent.set(`${path} ${key}`, { raw, answer });
    return send(res, 200, answer);
  };

  const handleDaily = (req, res, path, body) => {
    if (req.method === 'POST' && path === '/v1/rooms') {
      const name = body?.name ?? randomUUID();
      if (rooms.has(name)) return send(res, 400, { error: 'invalid-request-error', info: `a room named ${name} already exists` });
      const room = { id: randomUUID(), name, api_created: true, privacy: body?.privacy ?? 'public', url: `https://call-an-expert.daily.co/${name}`, created_at: new Date().toISOString(), config: body?.properties ?? {} };
      rooms.set(name, room);
      return send(res, 200, room);
    }
    const match = path.match(/^\/v1\/rooms\/([^/]+)$/);
    if (req.method === 'DELETE' && match) {
      const name = decodeURIComponent(match[1]);
      if (!rooms.delete(name)) return send(res, 404, { error: 'not-found', info: `room ${name} was not found` });
      return send(res, 200, { deleted: true, name });
    }
    return send(res, 404, { error: 'not-found' });
  };

  // The next failure planned for `service` that applies to `path`, taken off the list.
  const takeFailure = (service, path) => {
    const index = failures[service].findIndex(({ only }) => path.includes(only));
    return index < 0 ? undefined : failures[service].splice(index, 1)[0].status;
  };

  const proxy = (req, res, raw) => {
    const target = new URL(req.url.replace(/^\/rest/, ''), postgrestUrl);
    const upstream = forward(target, { method: req.method, headers: { ...req.headers, host: target.host } }, (answer) => {
      res.writeHead(answer.statusCode, answer.headers);
      answer.pipe(res);
    });
    upstream.on('error', () => send(res, 502, { message: 'PostgREST did not answer the stand-in' }));
    upstream.end(raw);
  };

  const server = createServer(async (req, res) => {
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    const raw = Buffer.concat(chunks).toString('utf8');
    if (req.url.startsWith('/rest/') && postgrestUrl) {
      const failure = takeFailure('postgrest', req.url);
      if (failure === 0) return req.socket.destroy();
      if (failure) return send(res, failure, { code: 'PGRST001', message: 'Database client error. Retrying the connection.', details: 'told to fail by the stand-in', hint: null });
      return proxy(req, res, raw);
    }
    const url = new URL(req.url, 'http://standin');
    const path = url.pathname;
    const formEncoded = (req.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded');
    let body;
    try {
      body = formEncoded ? parseForm(raw) : raw ? JSON.parse(raw) : undefined;
    } catch {
      return send(res, 400, { message: 'body is not JSON' });
    }

    if (path.startsWith('/__standin/')) {
      if (path === '/__standin/requests') {
        const service = url.searchParams.get('service');
        return send(res, 200, service ? requests.filter((r) => r.service === service) : requests);
      }
      if (path === '/__standin/emails') return send(res, 200, emails);
      if (path === '/__standin/fail' && req.method === 'POST') {
        const { service, status = 500, times = 1, path: only = '' } = body ?? {};
        if (!failures[service]) return send(res, 400, { message: 'service must be email, daily, stripe, webhook or postgrest' });
        failures[service].push(...Array.from({ length: times }, () => ({ status, only })));
        return send(res, 200, { service, pending: failures[service].length });
      }
      if (path === '/__standin/delay' && req.method === 'POST') {
        const { service, ms = 0 } = body ?? {};
        if (!failures[service]) return send(res, 400, { message: 'service must be email, daily, stripe, webhook or postgrest' });
        delays[service] = ms;
        return send(res, 200, { service, ms });
      }
      if (path === '/__standin/reset' && req.method === 'POST') {
        requests = []; emails = []; idempotent = new Map(); failures = noFailures(); delays = {}; rooms.clear();
        await stripe.settled();
        stripe.reset();
        return send(res, 200, { reset: true });
      }
      if (path.startsWith('/__standin/stripe/')) {
        const answer = await stripe.control(req.method, path.slice('/__standin/stripe'.length), body);
        return send(res, answer.status, answer.body);
      }
      return send(res, 404, { message: 'unknown control route' });
    }

    if (path === '/auth/v1/.well-known/jwks.json') return send(res, 200, jwks);
    const service = path.startsWith('/stripe/') ? 'stripe' : path.startsWith('/v1/') ? 'daily' : path.startsWith('/emails') ? 'email'
      : path.startsWith('/webhooks/') ? 'webhook' : null;
    if (!service) return send(res, 404, { message: `no stand-in for ${path}` });
    if (service === 'stripe' && req.method === 'OPTIONS') {
      // Stripe.js calls the API from the browser with the publishable key: Stripe answers CORS.
      res.writeHead(204, { 'access-control-allow-origin': '*', 'access-control-allow-methods': 'GET, POST, DELETE',
        'access-control-allow-headers': 'authorization, content-type, idempotency-key, stripe-version' });
      return res.end();
    }
    const failure = takeFailure(service, path);
    const recorded = ['authorization', 'idempotency-key', 'webhook-id', 'webhook-timestamp', 'webhook-signature', 'content-type', 'stripe-version'];
    requests.push({ service, method: req.method, path, headers: Object.fromEntries(recorded.map((name) => [name, req.headers[name] ?? null])), body: body ?? null, raw, failed_with: failure ?? null, at: new Date().toISOString() });
    if (delays[service]) await new Promise((resolve) => setTimeout(resolve, delays[service]));
    if (failure === 0) return req.socket.destroy();
    if (service === 'webhook') {
      // An automation endpoint: it takes anything, unless told to fail.
      return failure ? send(res, failure, { error: `told to fail with ${failure}` }) : send(res, 200, { received: true });
    }
    if (service === 'stripe') {
      res.setHeader('access-control-allow-origin', '*');
      // Stripe unreachable or failing before it executes anything: nothing done, nothing saved.
      if (failure) return send(res, failure, { error: { type: 'api_error', message: `told to fail with ${failure}` } });
      const answer = stripe.api(req.method, path.slice('/stripe'.length), req.headers, raw, url.search.slice(1));
      return send(res, answer.status, answer.body, { 'request-id': `req_${randomUUID().slice(0, 14)}`, ...(answer.replayed ? { 'idempotent-replayed': 'true' } : {}) });
    }
    if (!/^Bearer \S+/.test(req.headers.authorization ?? '')) return send(res, 401, { message: 'missing API key' });
    if (failure) return send(res, failure, { name: 'standin_failure', message: `told to fail with ${failure}` });
    if (service === 'email') {
      if (req.method !== 'POST' || (path !== '/emails' && path !== '/emails/batch')) return send(res, 404, { message: 'not found' });
      return handleEmail(req, res, path, body, raw);
    }
    return handleDaily(req, res, path, body);
  });

  return {
    listen: (port) => new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve(server.address().port));
    }),
    close: () => new Promise((resolve) => { server.closeAllConnections?.(); server.close(() => resolve()); }),
  };
}
