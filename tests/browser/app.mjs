// The page of the browser test: a client app using supabase-js unchanged against the local
// router (/functions/v1/<name>, /rest/v1), paying as Stripe.js does (the PaymentIntent confirmed
// with the publishable key and the client secret). Bundled by esbuild for the browser.
import { createClient } from '@supabase/supabase-js';

// Each step's outcome, or where it stopped and why.
window.marketplace = async ({ url, anonKey, jwt, stripeUrl, publishableKey, expertId, startsAt }) => {
  const supabase = createClient(url, anonKey, {
    auth: { persistSession: false, autoRefreshToken: false },
    global: { headers: { Authorization: `Bearer ${jwt}` } },
  });
  const failed = async (step, error) => ({
    step, error: error.name, status: error.context?.status ?? null, body: error.context?.json ? await error.context.json().catch(() => null) : null,
  });

  const search = await supabase.functions.invoke('find-experts', { body: { skills: ['cursor', 'v0'], limit: 5 } });
  if (search.error) return failed('search', search.error);
  const booked = await supabase.functions.invoke('create-session', { body: { expert_id: expertId, starts_at: startsAt, duration_minutes: 60 } });
  if (booked.error) return failed('book', booked.error);

  const paid = await fetch(`${stripeUrl}/v1/payment_intents/${booked.data.payment.payment_intent_id}/confirm`, {
    method: 'POST',
    headers: { authorization: `Bearer ${publishableKey}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ client_secret: booked.data.payment.client_secret, payment_method: 'pm_card_visa' }),
  }).then((response) => response.json());
  // Stripe's event books the session; the app reads it through PostgREST, as its user.
  let status = booked.data.session.status;
  for (let i = 0; i < 100 && status === 'awaiting_payment'; i += 1) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    const { data, error } = await supabase.from('sessions').select('status').eq('id', booked.data.session.id).single();
    if (error) return failed('read', error);
    status = data.status;
  }

  const cancelled = await supabase.functions.invoke('cancel-session', { body: { session_id: booked.data.session.id, reason: 'Testing the app' } });
  if (cancelled.error) return failed('cancel', cancelled.error);
  return { step: 'done', experts: search.data.experts.map((expert) => expert.expert_id), booked: booked.data, paid: paid.status, status, cancelled: cancelled.data };
};
