// The HTTP contract of every function, as OpenAPI 3.1: one document per worker (its routes, their
// bodies and parameters with their bounds, every response with each error status in the one
// error shape, and the security each route takes), written to openapi/<function>.json by
// `npm run openapi` and served by the worker at GET /openapi.json. The end-to-end tests validate
// every response they receive against it, and schemathesis fuzzes the running workers from it.

const uuid = { type: 'string', format: 'uuid' };
const instant = { type: 'string', format: 'date-time' };
const nullable = (schema) => ({ ...schema, type: [schema.type, 'null'] });
const object = (properties, required = Object.keys(properties), extra = {}) => ({ type: 'object', properties, required, ...extra });
const cents = { type: 'integer', minimum: 0 };
const currency = { type: 'string', pattern: '^[A-Z]{3}$' };
const ref = (name) => ({ $ref: `#/components/schemas/${name}` });

const schemas = {
  Error: object({
    error: object({
      code: { type: 'string', pattern: '^[a-z_]+$' },
      message: { type: 'string' },
      details: { type: 'object', description: 'For 400 validation_failed: fields, one entry per bad field; otherwise what the code needs (the current price, allowed methods, ...).' },
    }),
  }, ['error'], { additionalProperties: false }),
  HookError: object({ error: object({ http_code: { type: 'integer' }, message: { type: 'string' } }) }, ['error'], { additionalProperties: false }),
  Health: object({
    name: { type: 'string' }, version: { type: 'string' }, status: { enum: ['ok', 'degraded'] },
    postgrest: object({ reachable: { type: 'boolean' }, status: { type: ['integer', 'null'] }, latency_ms: { type: 'integer', minimum: 0 } }),
  }),
  Price: object({
    hourly_rate_cents: cents, duration_minutes: { type: 'integer' }, commission_bps: { type: 'integer', minimum: 0, maximum: 10000 },
    amount_cents: cents, platform_fee_cents: cents, expert_payout_cents: cents, currency,
  }),
  Session: object({
    id: uuid, client_id: uuid, expert_id: uuid, starts_at: instant, ends_at: instant, duration_minutes: { type: 'integer', minimum: 60, maximum: 480 },
    status: { enum: ['awaiting_payment', 'requested', 'confirmed', 'declined', 'cancelled', 'expired', 'in_progress', 'completed'] },
    hourly_rate_cents: cents, amount_cents: cents, platform_fee_cents: cents, expert_payout_cents: cents, commission_bps: { type: 'integer' }, currency,
    notes: { type: 'string' }, meeting_provider: { type: 'string' }, room_name: nullable({ type: 'string' }), room_url: nullable({ type: 'string' }),
    payment_intent_id: nullable({ type: 'string' }), payment_due_at: nullable(instant), answer_by: nullable(instant),
    cancelled_by: nullable(uuid), cancelled_at: nullable(instant), cancellation_reason: nullable({ type: 'string' }),
    refund_amount_cents: nullable(cents), refund_percent: { type: ['integer', 'null'], enum: [0, 50, 100, null] }, created_at: instant,
  }),
  Refund: object({ percent: { enum: [0, 50, 100] }, amount_cents: cents, platform_fee_cents: cents, expert_payout_cents: cents, currency }),
  Expert: object({
    expert_id: uuid, full_name: nullable({ type: 'string' }), avatar_url: nullable({ type: 'string' }), headline: nullable({ type: 'string' }),
    hourly_rate_cents: cents, currency, rating_avg: { type: 'number' }, rating_count: { type: 'integer' }, instant_booking: { type: 'boolean' },
    timezone: { type: 'string' }, online: { type: 'boolean' }, score: { type: 'number' },
    skills: { type: 'array', items: object({ slug: { type: 'string' }, proficiency: { type: 'integer' }, years: { type: ['integer', 'null'] } }) },
    score_parts: object({ skill_match: { type: 'number' }, rating: { type: 'number' }, price_fit: { type: 'number' }, availability: { type: 'integer' }, online: { type: 'integer' } }),
    next_slots: { type: 'array', items: instant, maxItems: 3 },
  }),
  SearchPage: object({ experts: { type: 'array', items: ref('Expert') }, match_request_id: nullable(uuid), next_cursor: nullable({ type: 'string' }) }),
  Search: object({
    skills: { type: 'array', items: { type: 'string', pattern: '^[a-z0-9]+(-[a-z0-9]+)*$', maxLength: 50 }, minItems: 1, maxItems: 10 },
    max_rate_cents: { type: 'integer', minimum: 1 }, currency, from: instant, to: instant,
    duration_minutes: { type: 'integer', minimum: 60, maximum: 480, multipleOf: 15 }, min_rating: { type: 'number', minimum: 0, maximum: 5 },
    limit: { type: 'integer', minimum: 1, maximum: 50 }, cursor: { type: 'string', maxLength: 200 },
  }, ['skills'], { additionalProperties: false, description: 'from and to come together, at most 31 days apart.' }),
  Booking: object({
    expert_id: uuid, starts_at: { ...instant, description: 'On a whole minute, at least an hour ahead, at most 90 days.' },
    duration_minutes: { type: 'integer', minimum: 60, maximum: 480, multipleOf: 15 }, notes: { type: 'string', maxLength: 2000 },
    expected_amount_cents: { type: 'integer', minimum: 1, description: 'The price the client was shown: 409 price_changed when it no longer holds.' },
  }, ['expert_id', 'starts_at', 'duration_minutes'], { additionalProperties: false }),
  Booked: object({
    session: ref('Session'), price: ref('Price'),
    payment: object({ provider: { const: 'stripe' }, payment_intent_id: { type: 'string' }, client_secret: { type: 'string' }, status: { type: 'string' }, pay_by: nullable(instant) }),
  }),
  Cancellation: object({ session_id: uuid, reason: { type: 'string', maxLength: 1000 } }, ['session_id'], { additionalProperties: false }),
  Cancelled: object({ session_id: uuid, status: { const: 'cancelled' }, cancelled_at: instant, cancelled_by: uuid, refund: ref('Refund') }),
  Token: object({ token: { type: 'string', maxLength: 200 } }, ['token'], { additionalProperties: false }),
  Hook: object({
    user: object({ id: { type: 'string' }, email: { type: 'string' }, new_email: { type: 'string' }, user_metadata: { type: 'object' } }, ['id']),
    email_data: object({
      token: { type: 'string' }, token_hash: { type: 'string' }, redirect_to: { type: 'string' },
      email_action_type: { enum: ['signup', 'invite', 'magiclink', 'recovery', 'email_change', 'reauthentication'] },
      site_url: { type: 'string' }, token_new: { type: 'string' }, token_hash_new: { type: 'string' },
    }, ['email_action_type']),
  }, ['user', 'email_data']),
  ResetRequest: object({ email: { type: 'string', format: 'email', maxLength: 254 } }, ['email'], { additionalProperties: false }),
  ResetCompletion: object({ token: { type: 'string', maxLength: 200 }, password: { type: 'string', minLength: 1, maxLength: 72 } }, ['token', 'password'], { additionalProperties: false }),
  RunRequest: object({
    scope: { oneOf: [{ const: 'everything' }, object({ session: uuid }), object({ rows: { type: 'array', items: uuid } })] },
  }, [], { additionalProperties: false }),
  Summary: object(Object.fromEntries(['expired', 'completed', 'rooms_missing', 'stripe_events_retried', 'claimed', 'sent', 'skipped', 'retrying', 'failed',
    'remaining', 'batches', 'calls', 'subrequests'].map((name) => [name, { type: 'integer', minimum: 0 }]))),
  Replay: object({ outbox_id: uuid }, ['outbox_id'], { additionalProperties: false }),
  Replayed: object({ id: uuid, channel: { type: 'string' }, topic: { type: 'string' }, status: { type: 'string' } }),
  StripeEvent: object({ id: { type: 'string', pattern: '^evt_' }, object: { const: 'event' }, type: { type: 'string' }, created: { type: 'integer' }, data: object({ object: { type: 'object' } }) }),
  Received: object({ received: { const: true }, event: { type: 'string' }, status: { enum: ['applied', 'duplicate', 'ignored', 'deferred', 'failed'] } }),
  OnboardingLink: object({
    url: { type: 'string', format: 'uri' }, expires_at: { type: 'integer' },
    account: object({ id: { type: 'string' }, charges_enabled: { type: 'boolean' }, payouts_enabled: { type: 'boolean' }, details_submitted: { type: 'boolean' } }),
  }),
};

const securitySchemes = {
  userJwt: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'A Supabase Auth access token (HS256, or ES256/RS256 from the project\'s JWKS).' },
  serviceRole: { type: 'http', scheme: 'bearer', description: 'The project\'s service-role key, compared in constant time.' },
  sendEmailHook: { type: 'apiKey', in: 'header', name: 'webhook-signature', description: 'Standard Webhooks: webhook-id, webhook-timestamp and webhook-signature (v1,<base64 HMAC-SHA256>) with the hook\'s secret, 5-minute tolerance.' },
  stripeSignature: { type: 'apiKey', in: 'header', name: 'Stripe-Signature', description: 't=<time>,v1=<hex HMAC-SHA256 of "t.body"> with an endpoint secret of STRIPE_WEBHOOK_SECRET, 5-minute tolerance.' },
};

const json = (schema) => ({ 'application/json': { schema } });
const errorText = {
  400: 'Bad input: every bad field named (validation_failed), malformed JSON (invalid_json), an unknown field.',
  401: 'No token, or one that does not verify.',
  403: 'A token without the right to this.',
  404: 'No such route or record.',
  409: 'A conflict: the code names it (slot_taken, price_changed, not_cancellable, ...).',
  413: 'The body is larger than allowed.',
  415: 'The body is not application/json.',
  429: 'Rate limited; Retry-After says when to try again.',
  500: 'An unexpected error, logged; nothing half-written.',
  502: 'A provider refused; nothing was changed.',
  503: 'The database or a provider cannot be reached; nothing was changed. Retry-After.',
};
const responses = (success, errors, { hook = false } = {}) => ({
  ...success,
  ...Object.fromEntries([...errors, 500].map((status) => [String(status), {
    description: errorText[status], content: json(ref(hook ? 'HookError' : 'Error')),
  }])),
});
const bodyOf = (name) => ({ required: true, content: json(ref(name)) });

// The routes every worker has besides its own.
const common = (allow) => ({
  '/health': {
    get: {
      operationId: 'health', summary: 'The function\'s name and version, and whether PostgREST answers.', security: [],
      responses: { 200: { description: 'Up.', content: json(ref('Health')) }, 503: { description: 'PostgREST unreachable.', content: json(ref('Health')) }, 500: { description: errorText[500], content: json(ref('Error')) } },
    },
  },
  '/openapi.json': {
    get: {
      operationId: 'openapi', summary: 'This document.', security: [],
      responses: { 200: { description: 'The OpenAPI document of this worker.', content: json({ type: 'object' }) } },
    },
  },
  ...allow,
});

const preflight = {
  options: {
    summary: 'CORS preflight.', security: [],
    responses: { 204: { description: 'The allowed methods and headers (Access-Control-Allow-*, Allow).' }, 404: { description: errorText[404], content: json(ref('Error')) } },
  },
};
const withPreflight = (paths) => Object.fromEntries(Object.entries(paths).map(([path, item]) => [path, { ...item, ...preflight }]));

const searchParameters = [
  { name: 'skills', in: 'query', required: true, description: '1-10 skill slugs, comma-separated.', schema: { type: 'string', pattern: '^[a-z0-9-]+(,[a-z0-9-]+){0,9}$', maxLength: 520 } },
  { name: 'max_rate_cents', in: 'query', schema: { type: 'integer', minimum: 1 } },
  { name: 'currency', in: 'query', schema: currency },
  { name: 'from', in: 'query', description: 'With to: a window of at most 31 days.', schema: instant },
  { name: 'to', in: 'query', schema: instant },
  { name: 'duration_minutes', in: 'query', schema: { type: 'integer', minimum: 60, maximum: 480, multipleOf: 15 } },
  { name: 'min_rating', in: 'query', schema: { type: 'number', minimum: 0, maximum: 5 } },
  { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 50 } },
  { name: 'cursor', in: 'query', schema: { type: 'string', maxLength: 200 } },
];

const functions = {
  'find-experts': {
    summary: 'Search the experts: ranked by a documented score, with free slots.',
    paths: {
      '/': {
        get: {
          operationId: 'searchByQuery', summary: 'The search as query parameters (cacheable when anonymous).', security: [{}, { userJwt: [] }], parameters: searchParameters,
          responses: responses({ 200: { description: 'A page of experts.', content: json(ref('SearchPage')) } }, [400, 401, 429, 503]),
        },
        post: {
          operationId: 'search', summary: 'The search as a JSON body.', security: [{}, { userJwt: [] }], requestBody: bodyOf('Search'),
          responses: responses({ 200: { description: 'A page of experts.', content: json(ref('SearchPage')) } }, [400, 401, 413, 415, 429, 503]),
        },
      },
    },
  },
  'create-session': {
    summary: 'Book a paid session: the slot is held while the browser pays with Stripe.js.',
    paths: {
      '/': {
        post: {
          operationId: 'createSession', summary: 'Book, and get the PaymentIntent\'s client secret.', security: [{ userJwt: [] }], requestBody: bodyOf('Booking'),
          responses: responses({ 201: { description: 'Held as awaiting_payment until Stripe reports the payment.', content: json(ref('Booked')) } }, [400, 401, 404, 409, 413, 415, 429, 502, 503]),
        },
      },
    },
  },
  'cancel-session': {
    summary: 'Cancel a session as either participant, refunded by the policy.',
    paths: {
      '/': {
        post: {
          operationId: 'cancelSession', summary: 'Cancel; cancelling again answers the same.', security: [{ userJwt: [] }], requestBody: bodyOf('Cancellation'),
          responses: responses({ 200: { description: 'Cancelled, with the refund.', content: json(ref('Cancelled')) } }, [400, 401, 404, 409, 413, 415, 503]),
        },
      },
    },
  },
  'auth-email-verify': {
    summary: 'The Supabase Auth Send Email hook, and the platform\'s own email verification.',
    paths: {
      '/hook': {
        post: {
          operationId: 'sendEmailHook', summary: 'Supabase Auth\'s Send Email hook: answers in the hook\'s format.', security: [{ sendEmailHook: [] }],
          parameters: ['webhook-id', 'webhook-timestamp'].map((name) => ({ name, in: 'header', required: true, schema: { type: 'string', maxLength: 200 } })),
          requestBody: bodyOf('Hook'),
          responses: responses({ 200: { description: 'Sent.', content: json({ type: 'object', maxProperties: 0 }) } }, [400, 401, 409, 413, 415, 503], { hook: true }),
        },
      },
      '/request': {
        post: {
          operationId: 'requestVerification', summary: 'Email the signed-in user a verification link (3 an hour).', security: [{ userJwt: [] }],
          responses: responses({ 202: { description: 'Queued.', content: json(object({ sent_to: { type: 'string' }, expires_at: instant })) } }, [401, 409, 429, 503]),
        },
      },
      '/confirm': {
        post: {
          operationId: 'confirmEmail', summary: 'Confirm with the link\'s token: once, before it expires, within 5 attempts.', security: [], requestBody: bodyOf('Token'),
          responses: responses({ 200: { description: 'Confirmed.', content: json(object({ confirmed: { const: true }, user_id: uuid })) } }, [400, 409, 413, 415, 429, 503]),
        },
      },
    },
  },
  'password-reset': {
    summary: 'Reset a forgotten password without revealing who has an account.',
    paths: {
      '/request': {
        post: {
          operationId: 'requestReset', summary: 'The same answer whether or not the account exists; rate limited.', security: [], requestBody: bodyOf('ResetRequest'),
          responses: responses({ 202: { description: 'If the account exists, a link is on its way.', content: json(object({ message: { type: 'string' } })) } }, [400, 413, 415, 429, 503]),
        },
      },
      '/complete': {
        post: {
          operationId: 'completeReset', summary: 'Set the new password with the link\'s token; every session ends.', security: [], requestBody: bodyOf('ResetCompletion'),
          responses: responses({ 200: { description: 'Changed.', content: json(object({ password_changed: { const: true }, signed_out_everywhere: { const: true } })) } }, [400, 409, 413, 415, 429, 503]),
        },
      },
    },
  },
  'booking-reminders': {
    summary: 'The dispatcher: moves sessions along in time and drains the outbox (also its cron).',
    paths: {
      '/run': {
        post: {
          operationId: 'run', summary: 'Run now, for everything due or for one request\'s work.', security: [{ serviceRole: [] }],
          requestBody: { required: false, content: json(ref('RunRequest')) },
          responses: responses({ 200: { description: 'The run\'s summary.', content: json(ref('Summary')) } }, [400, 401, 403, 413, 415, 503]),
        },
      },
      '/replay': {
        post: {
          operationId: 'replay', summary: 'Start one delivery over.', security: [{ serviceRole: [] }], requestBody: bodyOf('Replay'),
          responses: responses({ 202: { description: 'Replayed; carried out after the answer.', content: json(ref('Replayed')) } }, [400, 401, 403, 404, 409, 413, 415, 503]),
        },
      },
    },
  },
  'payment-events': {
    summary: 'Stripe\'s webhook receiver, and the experts\' Connect onboarding links.',
    paths: {
      '/': {
        post: {
          operationId: 'receiveStripeEvent', summary: 'A Stripe event: verified, stored once, applied in any order.', security: [{ stripeSignature: [] }],
          requestBody: bodyOf('StripeEvent'),
          responses: responses({ 200: { description: 'Stored (applied, duplicate, ignored or deferred).', content: json(ref('Received')) } }, [400, 413, 415, 503]),
        },
      },
      '/onboarding-link': {
        post: {
          operationId: 'onboardingLink', summary: 'A Stripe Connect onboarding link for the signed-in expert.', security: [{ userJwt: [] }],
          responses: responses({ 200: { description: 'A fresh link.', content: json(ref('OnboardingLink')) } }, [401, 403, 502, 503]),
        },
      },
    },
  },
};

export const documentedFunctions = Object.keys(functions);

export function documentFor(name) {
  const fn = functions[name];
  if (!fn) throw new Error(`no OpenAPI description for ${name}`);
  return {
    openapi: '3.1.0',
    info: { title: `Call-an-Expert ${name}`, version: '0.1.0', summary: fn.summary,
            description: 'Every error answers {"error": {"code", "message", "details"}} (the Send Email hook: {"error": {"http_code", "message"}}). Every response carries x-request-id.' },
    servers: [
      { url: `https://${name}.{subdomain}.workers.dev`, variables: { subdomain: { default: 'call-an-expert' } } },
      { url: `https://{host}/functions/v1/${name}`, description: 'The same routes under the Supabase Functions path (supabase-js).', variables: { host: { default: 'api.call-an-expert.com' } } },
    ],
    paths: withPreflight(common(fn.paths)),
    components: { schemas: reachable(fn.paths), securitySchemes: usedSchemes(fn.paths) },
  };
}

// The schemas a worker's routes refer to, directly or through each other.
function reachable(paths) {
  const found = new Set();
  const visit = (value) => {
    for (const [, name] of JSON.stringify(value).matchAll(/#\/components\/schemas\/(\w+)/g)) {
      if (!found.has(name)) {
        found.add(name);
        visit(schemas[name]);
      }
    }
  };
  visit(withPreflight(common(paths)));
  return Object.fromEntries([...found].sort().map((name) => [name, schemas[name]]));
}

function usedSchemes(paths) {
  const used = new Set(Object.values(paths).flatMap((item) => Object.values(item)).flatMap((op) => (op.security ?? []).flatMap(Object.keys)));
  return Object.fromEntries(Object.entries(securitySchemes).filter(([name]) => used.has(name)));
}
