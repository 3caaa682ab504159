// The TypeScript peers of the speed comparison: for each function, a route making the same
// PostgREST (and Stripe) requests as the Rust worker (with @supabase/postgrest-js), verifying the
// same tokens (HS256 with WebCrypto) and answering the same status, inside the same envelope
// (request id, CORS headers, one log line). Only the benchmark builds and runs it.
import { PostgrestClient } from '@supabase/postgrest-js';

interface Env {
  POSTGREST_URL: string;
  SUPABASE_ANON_KEY: string;
  SUPABASE_SERVICE_ROLE_KEY: string;
  SUPABASE_JWT_SECRET: string;
  STRIPE_API_URL: string;
  STRIPE_SECRET_KEY: string;
  ALLOWED_ORIGINS: string;
}

const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', ...headers } });
const problem = (status: number, code: string, message: string) => json(status, { error: { code, message, details: {} } });

let hmacKey: Promise<CryptoKey> | undefined;
const b64url = (text: string) => Uint8Array.from(atob(text.replace(/-/g, '+').replace(/_/g, '/')), (c) => c.charCodeAt(0));

// A user's id from a verified HS256 token, or null.
async function verifiedUser(request: Request, env: Env): Promise<{ id: string; token: string } | null> {
  const token = request.headers.get('authorization')?.replace(/^Bearer /i, '');
  if (!token) return null;
  const [header, payload, signature] = token.split('.');
  if (!signature) return null;
  hmacKey ??= crypto.subtle.importKey('raw', new TextEncoder().encode(env.SUPABASE_JWT_SECRET), { name: 'HMAC', hash: 'SHA-256' }, false, ['verify']);
  const valid = await crypto.subtle.verify('HMAC', await hmacKey, b64url(signature), new TextEncoder().encode(`${header}.${payload}`));
  if (!valid) return null;
  const claims = JSON.parse(new TextDecoder().decode(b64url(payload)));
  if (claims.role !== 'authenticated' || typeof claims.sub !== 'string' || claims.exp * 1000 < Date.now()) return null;
  return { id: claims.sub, token };
}

const db = (env: Env, bearer: string) => new PostgrestClient(env.POSTGREST_URL, { headers: { apikey: env.SUPABASE_ANON_KEY, authorization: `Bearer ${bearer}` } });

async function findExperts(url: URL, env: Env) {
  const skills = (url.searchParams.get('skills') ?? '').split(',').filter(Boolean);
  if (skills.length === 0) return problem(400, 'validation_failed', 'skills is required');
  const number = (name: string) => (url.searchParams.has(name) ? Number(url.searchParams.get(name)) : undefined);
  const { data, error } = await db(env, env.SUPABASE_ANON_KEY).rpc('find_experts', {
    skills, max_rate_cents: number('max_rate_cents'), window_from: url.searchParams.get('from') ?? undefined, window_to: url.searchParams.get('to') ?? undefined,
    duration_minutes: number('duration_minutes') ?? 60, page_size: number('limit') ?? 10,
  });
  if (error) return problem(502, 'upstream', error.message);
  const last = data.experts.at(-1);
  return json(200, { experts: data.experts, next_cursor: data.experts.length === 10 && last ? `${last.score}|${last.expert_id}` : null, match_request_id: null },
    { 'cache-control': 'public, max-age=30' });
}

async function createSession(request: Request, env: Env) {
  const user = await verifiedUser(request, env);
  if (!user) return problem(401, 'unauthorized', 'Sign in.');
  const body = await request.json() as { expert_id: string; starts_at: string; duration_minutes: number };
  const client = db(env, user.token);
  const quote = await client.rpc('expert_quote', { expert_id: body.expert_id });
  if (quote.error || !quote.data) return problem(404, 'not_found', 'No such expert.');
  if (!quote.data.accepts_payments) return problem(409, 'payments_not_enabled', 'This expert cannot take payments yet.');
  const amount = Math.floor((quote.data.hourly_rate_cents * body.duration_minutes + 30) / 60);
  const fee = Math.floor((amount * quote.data.commission_bps + 5000) / 10000);
  const booked = await client.rpc('book_session', {
    expert_id: body.expert_id, starts_at: body.starts_at, duration_minutes: body.duration_minutes, hourly_rate_cents: quote.data.hourly_rate_cents,
    commission_bps: quote.data.commission_bps, amount_cents: amount, platform_fee_cents: fee, expert_payout_cents: amount - fee, currency: quote.data.currency, notes: '',
    context: { request_id: crypto.randomUUID() },
  });
  if (booked.error) return problem(409, booked.error.hint ?? 'conflict', booked.error.message);
  const service = db(env, env.SUPABASE_SERVICE_ROLE_KEY);
  const plan = (await service.rpc('service_role_payment_plan', { session_id: booked.data.id })).data;
  const intent = await fetch(`${env.STRIPE_API_URL}/v1/payment_intents`, {
    method: 'POST',
    headers: { authorization: `Bearer ${env.STRIPE_SECRET_KEY}`, 'content-type': 'application/x-www-form-urlencoded', 'idempotency-key': `payment_intent:${plan.session_id}` },
    body: new URLSearchParams({ amount: String(plan.amount_cents), currency: plan.currency, capture_method: plan.manual_capture ? 'manual' : 'automatic',
      'payment_method_types[]': 'card', application_fee_amount: String(plan.application_fee_cents), 'transfer_data[destination]': plan.destination,
      description: plan.description, 'metadata[session_id]': plan.session_id }).toString(),
  });
  const payment = await intent.json();
  if (!intent.ok) {
    await service.rpc('service_role_abandon_booking', { session_id: booked.data.id, reason: 'stripe', context: {} });
    return problem(503, 'payment_provider_unavailable', 'Stripe is down.');
  }
  await service.rpc('service_role_record_stripe_objects', { objects: [payment] });
  return json(201, { session: booked.data, price: { amount_cents: amount, platform_fee_cents: fee, expert_payout_cents: amount - fee },
    payment: { payment_intent_id: payment.id, client_secret: payment.client_secret } });
}

async function cancelSession(request: Request, env: Env) {
  const user = await verifiedUser(request, env);
  if (!user) return problem(401, 'unauthorized', 'Sign in.');
  const body = await request.json() as { session_id: string; reason?: string };
  const found = await db(env, user.token).from('sessions')
    .select('id,client_id,starts_at,status,amount_cents,platform_fee_cents,expert_payout_cents')
    .eq('id', body.session_id);
  const session = found.data?.[0];
  if (!session) return problem(404, 'not_found', 'No such session.');
  const captured = session.status === 'confirmed';
  const byClient = session.client_id === user.id;
  const percent = !captured ? 0 : !byClient || Date.parse(session.starts_at) - Date.now() > 86_400_000 ? 100 : 50;
  const refund = percent === 100 ? session.amount_cents : percent === 50 ? Math.floor((session.amount_cents + 1) / 2) : 0;
  const refundFee = session.amount_cents === 0 ? 0 : Math.floor((session.platform_fee_cents * refund * 2 + session.amount_cents) / (session.amount_cents * 2));
  const cancelled = await db(env, env.SUPABASE_SERVICE_ROLE_KEY).rpc('service_role_cancel_session', {
    session_id: session.id, actor_id: user.id, reason: body.reason ?? '', refund_percent: percent, refund_amount_cents: refund,
    refund_fee_cents: refundFee, refund_payout_cents: refund - refundFee, context: {},
  });
  if (cancelled.error) return problem(409, cancelled.error.hint ?? 'conflict', cancelled.error.message);
  return json(200, { session_id: session.id, status: 'cancelled', refund: { percent, amount_cents: refund } });
}

async function confirmEmail(request: Request, env: Env) {
  const { token } = await request.json() as { token: string };
  const [id] = String(token).split('.');
  const stored = await db(env, env.SUPABASE_SERVICE_ROLE_KEY).rpc('service_role_account_token', { kind: 'email_verification', token_id: id });
  if (stored.error) return problem(502, 'upstream', stored.error.message);
  return problem(400, 'invalid_token', 'This link is not valid.');
}

async function requestReset(request: Request, env: Env) {
  const started = Date.now();
  const { email } = await request.json() as { email: string };
  const digest = Array.from(new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(email)))).map((b) => b.toString(16).padStart(2, '0')).join('');
  const service = db(env, env.SUPABASE_SERVICE_ROLE_KEY);
  for (const [bucket, max] of [[`password-reset:email:${digest}`, 5], [`password-reset:client:${request.headers.get('cf-connecting-ip') ?? 'unknown'}`, 20]] as const) {
    const wait = await service.rpc('service_role_hit_rate_limit', { bucket, max_hits: max, window_seconds: 3600 });
    if (wait.data > 0) return problem(429, 'rate_limited', 'Too many reset requests.');
  }
  await service.rpc('service_role_issue_password_reset', { email, token_id: crypto.randomUUID(), token_hash: '00'.repeat(32), context: {} });
  const elapsed = Date.now() - started;
  if (elapsed < 500) await new Promise((resolve) => setTimeout(resolve, 500 - elapsed));
  return json(202, { message: 'If an account uses that address, a reset link is on its way.' });
}

async function runDispatcher(request: Request, env: Env) {
  if (request.headers.get('authorization') !== `Bearer ${env.SUPABASE_SERVICE_ROLE_KEY}`) return problem(403, 'forbidden', 'Service role only.');
  const service = db(env, env.SUPABASE_SERVICE_ROLE_KEY);
  const advanced = await service.rpc('service_role_advance_sessions', {});
  const claim = await service.rpc('service_role_claim_outbox', { email_batch: 100, calls: 10, lease_seconds: 300 });
  return json(200, { expired: advanced.data?.expired, claimed: claim.data?.emails?.length ?? 0 });
}

async function handle(request: Request, env: Env, url: URL, fn: string, route: string): Promise<Response> {
  if (route === 'health') {
    const started = Date.now();
    const probe = await fetch(`${env.POSTGREST_URL}/rpc/health`, { headers: { apikey: env.SUPABASE_ANON_KEY, authorization: `Bearer ${env.SUPABASE_ANON_KEY}` } });
    const reachable = probe.status < 500;
    return json(reachable ? 200 : 503, { name: fn, version: '0.1.0', status: reachable ? 'ok' : 'degraded', postgrest: { reachable, status: probe.status, latency_ms: Date.now() - started } });
  }
  switch (`${fn}/${route}`) {
    case 'find-experts/': return findExperts(url, env);
    case 'create-session/': return createSession(request, env);
    case 'cancel-session/': return cancelSession(request, env);
    case 'auth-email-verify/confirm': return confirmEmail(request, env);
    case 'password-reset/request': return requestReset(request, env);
    case 'booking-reminders/run': return runDispatcher(request, env);
    default: return problem(404, 'not_found', `No route ${url.pathname}.`);
  }
}

// The envelope of every Rust worker's answer (shared/src/edge/mod.rs): the caller's request id
// when it is safe, a new one otherwise; CORS headers for an allowed origin; one JSON log line.
const safeRequestId = /^[A-Za-z0-9_-]{1,64}$/;
const allowedOrigin = (env: Env, origin: string | null) => {
  const allowed = env.ALLOWED_ORIGINS.split(',').map((entry) => entry.trim());
  if (allowed.includes('*')) return '*';
  return origin && allowed.some((entry) => entry.toLowerCase() === origin.toLowerCase()) ? origin : null;
};

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const started = Date.now();
    const url = new URL(request.url);
    const [, fn, route = ''] = url.pathname.split('/');
    const given = request.headers.get('x-request-id');
    const requestId = given && safeRequestId.test(given) ? given : crypto.randomUUID();
    const origin = allowedOrigin(env, request.headers.get('origin'));
    const response = await handle(request, env, url, fn, route);
    response.headers.set('x-request-id', requestId);
    if (origin) {
      response.headers.set('access-control-allow-origin', origin);
      response.headers.set('access-control-expose-headers', 'x-request-id, retry-after');
      response.headers.append('vary', 'Origin');
    }
    console.log(JSON.stringify({ level: 'info', function: fn, request_id: requestId, method: request.method, path: `/${route}`, status: response.status, duration_ms: Date.now() - started }));
    return response;
  },
};
