// Stripe, played locally: the API calls the workers make and the events Stripe sends back, as
// Stripe's API reference documents them.
//
// API (under /stripe, with `Authorization: Bearer <secret key>`; the browser's confirm also takes
// the publishable key with the client secret, as Stripe.js does):
//   POST /v1/accounts, POST /v1/account_links                 Connect Express onboarding
//   POST /v1/payment_intents, GET /v1/payment_intents/:id
//   POST /v1/payment_intents/:id/confirm  (payment_method: pm_card_visa, pm_card_chargeDeclined)
//   POST /v1/payment_intents/:id/capture, POST /v1/payment_intents/:id/cancel
//   POST /v1/refunds, POST /v1/application_fees/:id/refunds
// Bodies are form-encoded and parsed as Stripe parses them (`metadata[session_id]=...`,
// `expand[]=charge`). `Idempotency-Key` is honoured as Stripe documents: the same key with the
// same parameters answers the first answer again (`Idempotent-Replayed: true`) without doing it
// twice; the same key with other parameters is a 400 idempotency_error. Errors have Stripe's
// shape, `{"error": {"type", "code", "message", "param"}}`, and its status codes. A failure the
// stand-in is told to inject (POST /__standin/fail {"service": "stripe", ...}) happens before the
// request is executed, so nothing is done and nothing is saved under its key.
//
// Events: every change sends Stripe's event for it (payment_intent.succeeded, charge.refunded,
// refund.created, transfer.reversed, application_fee.refunded, account.updated, ...) to the
// webhook endpoint, signed with `Stripe-Signature` (t=<time>,v1=<HMAC-SHA256 of "t.payload">),
// after the API call has answered, one at a time, in order. A test can change that:
//   POST /__standin/stripe/delivery {"mode": "immediate" | "hold" | "twice" | "drop"}
//   POST /__standin/stripe/release {"order": "in_order" | "reverse"}    send what was held
//   POST /__standin/stripe/redeliver                                   retry what the endpoint refused
//   GET  /__standin/stripe/deliveries     every delivery: event, type, body, signature, answer
//   GET  /__standin/stripe/objects        every object, by kind: what Stripe was asked to do
//   POST /__standin/stripe/accounts {expert_id, email}   an account that finished onboarding earlier
//   POST /__standin/stripe/accounts/:id/onboard     the expert finished onboarding (account.updated)
//   POST /__standin/stripe/charges/:id/dispute      the cardholder disputes the charge
//   POST /__standin/stripe/refunds/:id/fail         the refund fails at the bank (refund.failed)
import { createHmac, randomBytes } from 'node:crypto';

const API_VERSION = '2024-06-20';

// `a[b][c]=1&d[]=x&d[]=y` -> { a: { b: { c: '1' } }, d: ['x', 'y'] }, as Stripe reads it.
export function parseForm(raw) {
  const out = {};
  for (const pair of raw ? raw.split('&') : []) {
    if (!pair) continue;
    const [rawKey, rawValue = ''] = pair.split('=');
    const key = decodeURIComponent(rawKey.replace(/\+/g, ' '));
    const value = decodeURIComponent(rawValue.replace(/\+/g, ' '));
    const parts = key.split('[').map((part, index) => (index === 0 ? part : part.replace(/\]$/, '')));
    let node = out;
    parts.forEach((part, index) => {
      const last = index === parts.length - 1;
      const nextIsList = parts[index + 1] === '';
      if (part === '') {
        if (last) node.push(value);
        return;
      }
      if (last) node[part] = value;
      else node = node[part] ??= nextIsList ? [] : {};
    });
  }
  return out;
}

const id = (prefix) => `${prefix}_${randomBytes(12).toString('base64url').replace(/[-_]/g, 'x')}`;
const now = () => Math.floor(Date.now() / 1000);
const clone = (value) => JSON.parse(JSON.stringify(value));

export function createStripe({ secretKey, publishableKey, webhookSecret, webhookUrl, accounts = [] }) {
  let store;
  let idempotent;
  let deliveries;
  let held;
  let mode;
  let queue = Promise.resolve();
  const onboarded = (accountId, metadata = {}, email = null) => ({ id: accountId, object: 'account', type: 'express', email, charges_enabled: true,
    payouts_enabled: true, details_submitted: true, metadata, capabilities: { card_payments: 'active', transfers: 'active' },
    requirements: { currently_due: [] }, created: now() });
  // Accounts outlive a reset, as experts' accounts outlive any one payment; the rest is forgotten.
  const reset = () => {
    store = { accounts: store?.accounts ?? new Map(), payment_intents: new Map(), charges: new Map(), refunds: new Map(), application_fees: new Map(),
      fee_refunds: new Map(), transfers: new Map(), transfer_reversals: new Map(), disputes: new Map() };
    idempotent = new Map();
    deliveries = [];
    held = [];
    mode = 'immediate';
    // The seeded experts' accounts, onboarded before any run.
    for (const accountId of accounts) if (!store.accounts.has(accountId)) store.accounts.set(accountId, onboarded(accountId));
  };
  reset();

  const sign = (payload, timestamp) => `t=${timestamp},v1=${createHmac('sha256', webhookSecret).update(`${timestamp}.${payload}`).digest('hex')}`;
  const deliver = (event, timestamp = now()) => {
    const body = JSON.stringify(event);
    const signature = sign(body, timestamp);
    const record = { event: event.id, type: event.type, body, signature, status: null, at: new Date().toISOString() };
    deliveries.push(record);
    queue = queue.then(async () => {
      try {
        const answer = await fetch(webhookUrl, { method: 'POST', headers: { 'content-type': 'application/json; charset=utf-8', 'stripe-signature': signature, 'user-agent': 'Stripe/1.0 (+https://stripe.com/docs/webhooks)' }, body });
        record.status = answer.status;
        record.answer = await answer.text();
      } catch (error) {
        record.status = 0;
        record.answer = String(error);
      }
    });
    return queue;
  };
  const emit = (type, object, extra = {}) => {
    const event = { id: id('evt'), object: 'event', api_version: API_VERSION, created: now(), data: { object: clone(object) },
      livemode: false, pending_webhooks: 1, request: { id: id('req'), idempotency_key: null }, type, ...extra };
    if (mode === 'hold') held.push(event);
    else if (mode === 'drop') deliveries.push({ event: event.id, type, body: JSON.stringify(event), signature: null, status: 'dropped', at: new Date().toISOString() });
    else {
      deliver(event);
      // Stripe retrying a delivery signs it again, later.
      if (mode === 'twice') deliver(event, now() + 1);
    }
  };

  const fail = (status, type, code, message, extra = {}) => ({ status, body: { error: { type, code, message, ...extra } } });
  const missing = (kind, value) => fail(404, 'invalid_request_error', 'resource_missing', `No such ${kind}: '${value}'`, { param: 'id' });
  const integer = (value) => (/^\d+$/.test(String(value ?? '')) ? Number(value) : null);
  const expand = (object, params) => {
    const out = clone(object);
    for (const field of params.expand ?? []) {
      const ref = out[field];
      const kind = { latest_charge: 'charges', charge: 'charges', transfer_reversal: 'transfer_reversals', payment_intent: 'payment_intents' }[field];
      if (typeof ref === 'string' && kind && store[kind].has(ref)) out[field] = clone(store[kind].get(ref));
    }
    return out;
  };

  // The application fee and the transfer of a destination charge, made when it is captured.
  const settle = (charge, intent) => {
    const transfer = { id: id('tr'), object: 'transfer', amount: charge.amount_captured, currency: charge.currency, destination: intent.transfer_data.destination,
      source_transaction: charge.id, reversals: { object: 'list', data: [] }, amount_reversed: 0, created: now() };
    store.transfers.set(transfer.id, transfer);
    const fee = { id: id('fee'), object: 'application_fee', amount: intent.application_fee_amount ?? 0, amount_refunded: 0, currency: charge.currency,
      charge: charge.id, account: intent.transfer_data.destination, refunds: { object: 'list', data: [] }, created: now() };
    store.application_fees.set(fee.id, fee);
    Object.assign(charge, { transfer: transfer.id, application_fee: fee.id });
  };

  const routes = [
    ['POST', /^\/v1\/accounts$/, (params) => {
      const account = { id: id('acct'), object: 'account', type: params.type ?? 'express', email: params.email ?? null, charges_enabled: false,
        payouts_enabled: false, details_submitted: false, metadata: params.metadata ?? {}, capabilities: { card_payments: 'inactive', transfers: 'inactive' },
        requirements: { currently_due: ['external_account', 'tos_acceptance.date'] }, created: now() };
      store.accounts.set(account.id, account);
      return { status: 200, body: account };
    }],
    ['POST', /^\/v1\/account_links$/, (params) => {
      if (!store.accounts.has(params.account)) return missing('account', params.account);
      if (params.type !== 'account_onboarding' || !params.refresh_url || !params.return_url) {
        return fail(400, 'invalid_request_error', 'parameter_missing', 'type, refresh_url and return_url are required.', { param: 'type' });
      }
      return { status: 200, body: { object: 'account_link', created: now(), expires_at: now() + 300, url: `https://connect.stripe.com/setup/e/${params.account}/${randomBytes(9).toString('hex')}` } };
    }],
    ['POST', /^\/v1\/payment_intents$/, (params) => {
      const amount = integer(params.amount);
      if (!amount) return fail(400, 'invalid_request_error', 'parameter_invalid_integer', 'Invalid positive integer', { param: 'amount' });
      if (!/^[a-z]{3}$/.test(params.currency ?? '')) return fail(400, 'invalid_request_error', 'parameter_invalid_empty', 'Missing required param: currency.', { param: 'currency' });
      const destination = params.transfer_data?.destination;
      const account = store.accounts.get(destination);
      if (destination && !account) return missing('account', destination);
      if (account && !account.charges_enabled) {
        return fail(400, 'invalid_request_error', 'insufficient_capabilities_for_transfer', `The destination account ${destination} cannot take charges yet.`, { param: 'transfer_data[destination]' });
      }
      const fee = params.application_fee_amount === undefined ? null : integer(params.application_fee_amount);
      if (fee !== null && fee > amount) return fail(400, 'invalid_request_error', 'application_fees_not_allowed', 'The application fee exceeds the amount.', { param: 'application_fee_amount' });
      const intent = { id: id('pi'), object: 'payment_intent', amount, amount_capturable: 0, amount_received: 0, currency: params.currency,
        capture_method: params.capture_method ?? 'automatic', status: 'requires_payment_method', client_secret: null, application_fee_amount: fee,
        transfer_data: destination ? { destination } : null, metadata: params.metadata ?? {}, description: params.description ?? null,
        payment_method_types: params.payment_method_types ?? ['card'], latest_charge: null, last_payment_error: null, cancellation_reason: null,
        created: now(), livemode: false };
      intent.client_secret = `${intent.id}_secret_${randomBytes(12).toString('hex')}`;
      store.payment_intents.set(intent.id, intent);
      emit('payment_intent.created', intent);
      return { status: 200, body: intent };
    }],
    ['GET', /^\/v1\/payment_intents\/([^/]+)$/, (params, [piId]) => {
      const intent = store.payment_intents.get(piId);
      return intent ? { status: 200, body: expand(intent, params) } : missing('payment_intent', piId);
    }],
    ['POST', /^\/v1\/payment_intents\/([^/]+)\/confirm$/, (params, [piId], key) => {
      const intent = store.payment_intents.get(piId);
      if (!intent) return missing('payment_intent', piId);
      if (key.startsWith('pk_') && params.client_secret !== intent.client_secret) {
        return fail(400, 'invalid_request_error', 'payment_intent_authentication_failure', 'The client_secret provided does not match the client_secret associated with the PaymentIntent.', { param: 'client_secret' });
      }
      if (!['requires_payment_method', 'requires_confirmation'].includes(intent.status)) {
        return fail(400, 'invalid_request_error', 'payment_intent_unexpected_state', `This PaymentIntent's status is ${intent.status}.`, { payment_intent: clone(intent) });
      }
      const declined = params.payment_method === 'pm_card_chargeDeclined';
      const automatic = intent.capture_method === 'automatic';
      const charge = { id: id('ch'), object: 'charge', amount: intent.amount, amount_captured: 0, amount_refunded: 0, captured: false, paid: !declined,
        refunded: false, status: declined ? 'failed' : 'succeeded', currency: intent.currency, payment_intent: intent.id, application_fee: null,
        application_fee_amount: intent.application_fee_amount, transfer: null, transfer_data: intent.transfer_data, metadata: {},
        failure_code: declined ? 'card_declined' : null, failure_message: declined ? 'Your card was declined.' : null,
        refunds: { object: 'list', data: [] }, disputed: false, created: now() };
      store.charges.set(charge.id, charge);
      intent.latest_charge = charge.id;
      if (declined) {
        Object.assign(intent, { status: 'requires_payment_method', last_payment_error: { type: 'card_error', code: 'card_declined', message: 'Your card was declined.', charge: charge.id } });
        emit('charge.failed', charge);
        emit('payment_intent.payment_failed', intent);
        return fail(402, 'card_error', 'card_declined', 'Your card was declined.', { decline_code: 'generic_decline', charge: charge.id, payment_intent: clone(intent) });
      }
      if (automatic) {
        Object.assign(charge, { captured: true, amount_captured: charge.amount });
        settle(charge, intent);
        Object.assign(intent, { status: 'succeeded', amount_received: intent.amount });
        emit('charge.succeeded', charge);
        emit('payment_intent.succeeded', intent);
      } else {
        Object.assign(intent, { status: 'requires_capture', amount_capturable: intent.amount });
        emit('charge.succeeded', charge);
        emit('payment_intent.amount_capturable_updated', intent);
      }
      return { status: 200, body: intent };
    }],
    ['POST', /^\/v1\/payment_intents\/([^/]+)\/capture$/, (params, [piId]) => {
      const intent = store.payment_intents.get(piId);
      if (!intent) return missing('payment_intent', piId);
      if (intent.status !== 'requires_capture') {
        return fail(400, 'invalid_request_error', 'payment_intent_unexpected_state', `This PaymentIntent could not be captured because it has a status of ${intent.status}. Only a PaymentIntent with one of the following statuses may be captured: requires_capture.`, { payment_intent: clone(intent) });
      }
      const charge = store.charges.get(intent.latest_charge);
      Object.assign(charge, { captured: true, amount_captured: charge.amount });
      settle(charge, intent);
      Object.assign(intent, { status: 'succeeded', amount_capturable: 0, amount_received: intent.amount });
      emit('charge.captured', charge);
      emit('payment_intent.succeeded', intent);
      return { status: 200, body: expand(intent, params) };
    }],
    ['POST', /^\/v1\/payment_intents\/([^/]+)\/cancel$/, (params, [piId]) => {
      const intent = store.payment_intents.get(piId);
      if (!intent) return missing('payment_intent', piId);
      if (!['requires_payment_method', 'requires_capture', 'requires_confirmation', 'requires_action'].includes(intent.status)) {
        return fail(400, 'invalid_request_error', 'payment_intent_unexpected_state', `You cannot cancel this PaymentIntent because it has a status of ${intent.status}. Only a PaymentIntent with one of the following statuses may be canceled: requires_payment_method, requires_capture, requires_confirmation, requires_action, processing.`, { payment_intent: clone(intent) });
      }
      // An authorisation released: its uncaptured charge is refunded, as Stripe does.
      if (intent.status === 'requires_capture') {
        const charge = store.charges.get(intent.latest_charge);
        const refund = { id: id('re'), object: 'refund', amount: charge.amount, charge: charge.id, payment_intent: intent.id, currency: charge.currency,
          status: 'succeeded', reason: null, metadata: {}, transfer_reversal: null, created: now() };
        store.refunds.set(refund.id, refund);
        Object.assign(charge, { amount_refunded: charge.amount, refunded: true });
        charge.refunds.data.push(refund);
        emit('charge.refunded', charge);
      }
      Object.assign(intent, { status: 'canceled', amount_capturable: 0, cancellation_reason: params.cancellation_reason ?? null, canceled_at: now() });
      emit('payment_intent.canceled', intent);
      return { status: 200, body: intent };
    }],
    ['POST', /^\/v1\/refunds$/, (params) => {
      const intent = params.payment_intent ? store.payment_intents.get(params.payment_intent) : null;
      const charge = store.charges.get(params.charge ?? intent?.latest_charge);
      if (!charge) return missing(params.charge ? 'charge' : 'payment_intent', params.charge ?? params.payment_intent);
      if (!charge.captured) return fail(400, 'invalid_request_error', 'charge_not_captured', 'This charge has not been captured: cancel its PaymentIntent instead.');
      const amount = params.amount === undefined ? charge.amount_captured - charge.amount_refunded : integer(params.amount);
      if (!amount || amount > charge.amount_captured - charge.amount_refunded) {
        return fail(400, 'invalid_request_error', 'amount_too_large', `Refund amount (${params.amount}) is greater than unrefunded amount on charge.`, { param: 'amount' });
      }
      const refund = { id: id('re'), object: 'refund', amount, charge: charge.id, payment_intent: charge.payment_intent, currency: charge.currency,
        status: 'succeeded', reason: params.reason ?? null, metadata: params.metadata ?? {}, transfer_reversal: null, created: now() };
      store.refunds.set(refund.id, refund);
      Object.assign(charge, { amount_refunded: charge.amount_refunded + amount, refunded: charge.amount_refunded + amount === charge.amount_captured });
      charge.refunds.data.push(refund);
      emit('charge.refunded', charge);
      emit('refund.created', refund);
      if (params.reverse_transfer === 'true' && charge.transfer) {
        // A destination charge's transfer is reversed in proportion to the refund.
        const transfer = store.transfers.get(charge.transfer);
        const reversal = { id: id('trr'), object: 'transfer_reversal', amount: Math.round((amount * transfer.amount) / charge.amount_captured),
          currency: charge.currency, transfer: transfer.id, created: now() };
        store.transfer_reversals.set(reversal.id, reversal);
        transfer.reversals.data.push(reversal);
        transfer.amount_reversed += reversal.amount;
        refund.transfer_reversal = reversal.id;
        emit('transfer.reversed', transfer);
      }
      if (params.refund_application_fee === 'true' && charge.application_fee) {
        const fee = store.application_fees.get(charge.application_fee);
        const feeRefund = { id: id('fr'), object: 'fee_refund', amount: Math.round((fee.amount * amount) / charge.amount_captured), currency: fee.currency, fee: fee.id, metadata: {}, created: now() };
        store.fee_refunds.set(feeRefund.id, feeRefund);
        fee.refunds.data.push(feeRefund);
        fee.amount_refunded += feeRefund.amount;
        emit('application_fee.refunded', fee);
      }
      return { status: 200, body: expand(refund, params) };
    }],
    ['POST', /^\/v1\/application_fees\/([^/]+)\/refunds$/, (params, [feeId]) => {
      const fee = store.application_fees.get(feeId);
      if (!fee) return missing('application_fee', feeId);
      const amount = params.amount === undefined ? fee.amount - fee.amount_refunded : integer(params.amount);
      if (!amount || amount > fee.amount - fee.amount_refunded) {
        return fail(400, 'invalid_request_error', 'amount_too_large', 'Refund amount is greater than the unrefunded application fee.', { param: 'amount' });
      }
      const feeRefund = { id: id('fr'), object: 'fee_refund', amount, currency: fee.currency, fee: fee.id, metadata: params.metadata ?? {}, created: now() };
      store.fee_refunds.set(feeRefund.id, feeRefund);
      fee.refunds.data.push(feeRefund);
      fee.amount_refunded += amount;
      emit('application_fee.refunded', fee);
      return { status: 200, body: feeRefund };
    }],
  ];

  // One API request, as Stripe answers it.
  const api = (method, path, headers, raw, query) => {
    const key = (headers.authorization ?? '').replace(/^Bearer /, '');
    const route = routes.find(([m, pattern]) => m === method && pattern.test(path));
    const publicRoute = route && /\/confirm$/.test(path);
    if (key !== secretKey && !(publicRoute && key === publishableKey)) {
      return fail(401, 'invalid_request_error', 'api_key_invalid', `Invalid API Key provided: ${key.slice(0, 8)}${'*'.repeat(8)}`);
    }
    if (!route) return fail(404, 'invalid_request_error', 'resource_missing', `Unrecognized request URL (${method}: ${path}).`);
    const params = parseForm(method === 'GET' ? query : raw);
    const idempotencyKey = method === 'POST' ? headers['idempotency-key'] : undefined;
    if (idempotencyKey) {
      const first = idempotent.get(idempotencyKey);
      if (first) {
        if (first.path !== path || first.raw !== raw) {
          return fail(400, 'idempotency_error', 'idempotency_key_in_use', `Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '${idempotencyKey}' if you meant to execute a different request.`);
        }
        return { ...first.answer, replayed: true };
      }
    }
    const answer = route[2](params, path.match(route[1]).slice(1), key);
    if (idempotencyKey) idempotent.set(idempotencyKey, { path, raw, answer: clone(answer) });
    return answer;
  };

  // The control routes a test drives Stripe's side with.
  const control = async (method, path, body) => {
    if (path === '/delivery' && method === 'POST') {
      if (!['immediate', 'hold', 'twice', 'drop'].includes(body?.mode)) return { status: 400, body: { message: 'mode is immediate, hold, twice or drop' } };
      mode = body.mode;
      return { status: 200, body: { mode } };
    }
    if (path === '/release' && method === 'POST') {
      const events = body?.order === 'reverse' ? held.reverse() : held;
      held = [];
      mode = 'immediate';
      for (const event of events) deliver(event);
      await queue;
      return { status: 200, body: { released: events.length } };
    }
    if (path === '/redeliver' && method === 'POST') {
      const refused = deliveries.filter((d) => d.signature && (d.status === 0 || d.status >= 300) && !d.redelivered);
      for (const delivery of refused) {
        delivery.redelivered = true;
        deliver(JSON.parse(delivery.body));
      }
      await queue;
      return { status: 200, body: { redelivered: refused.length } };
    }
    if (path === '/settle' && method === 'POST') {
      await queue;
      return { status: 200, body: { delivered: deliveries.length } };
    }
    if (path === '/deliveries' && method === 'GET') return { status: 200, body: deliveries };
    if (path === '/objects' && method === 'GET') {
      return { status: 200, body: Object.fromEntries(Object.entries(store).map(([kind, map]) => [kind, [...map.values()]])) };
    }
    if (path === '/accounts' && method === 'POST') {
      const account = onboarded(id('acct'), { expert_id: body?.expert_id }, body?.email ?? null);
      store.accounts.set(account.id, account);
      return { status: 200, body: account };
    }
    let match = path.match(/^\/accounts\/([^/]+)\/onboard$/);
    if (match && method === 'POST') {
      const account = store.accounts.get(match[1]);
      if (!account) return { status: 404, body: { message: 'no such account' } };
      Object.assign(account, { charges_enabled: body?.charges_enabled ?? true, payouts_enabled: body?.payouts_enabled ?? true, details_submitted: true,
        capabilities: { card_payments: 'active', transfers: 'active' }, requirements: { currently_due: [] } });
      emit('account.updated', account, { account: account.id });
      await queue;
      return { status: 200, body: account };
    }
    match = path.match(/^\/charges\/([^/]+)\/dispute$/);
    if (match && method === 'POST') {
      const charge = store.charges.get(match[1]);
      if (!charge) return { status: 404, body: { message: 'no such charge' } };
      const dispute = { id: id('dp'), object: 'dispute', amount: charge.amount_captured, currency: charge.currency, charge: charge.id,
        payment_intent: charge.payment_intent, reason: body?.reason ?? 'fraudulent', status: 'needs_response', created: now() };
      store.disputes.set(dispute.id, dispute);
      charge.disputed = true;
      emit('charge.dispute.created', dispute);
      await queue;
      return { status: 200, body: dispute };
    }
    match = path.match(/^\/refunds\/([^/]+)\/fail$/);
    if (match && method === 'POST') {
      const refund = store.refunds.get(match[1]);
      if (!refund) return { status: 404, body: { message: 'no such refund' } };
      Object.assign(refund, { status: 'failed', failure_reason: body?.failure_reason ?? 'lost_or_stolen_card' });
      const charge = store.charges.get(refund.charge);
      charge.amount_refunded -= refund.amount;
      emit('refund.failed', refund);
      await queue;
      return { status: 200, body: refund };
    }
    return { status: 404, body: { message: 'unknown Stripe control route' } };
  };

  return { api, control, reset, settled: () => queue, sign };
}
