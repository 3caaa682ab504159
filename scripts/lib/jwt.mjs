// Mints Supabase-style HS256 JWTs with node:crypto: an implementation independent of the
// workers' jwt-compact, so tests and the stack's printed tokens check the workers for real.
import { createHmac, createSign } from 'node:crypto';

const b64url = (value) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');

export function signHs256(claims, secret, header = { alg: 'HS256', typ: 'JWT' }) {
  const unsigned = `${b64url(header)}.${b64url(claims)}`;
  return `${unsigned}.${createHmac('sha256', secret).update(unsigned).digest('base64url')}`;
}

// ES256 (raw r||s signature) or RS256 with a private key, as Supabase's asymmetric keys sign.
export function signAsymmetric(claims, { alg, kid, privateKey }) {
  const unsigned = `${b64url({ alg, typ: 'JWT', kid })}.${b64url(claims)}`;
  const key = alg === 'ES256' ? { key: privateKey, dsaEncoding: 'ieee-p1363' } : privateKey;
  return `${unsigned}.${createSign('SHA256').update(unsigned).sign(key).toString('base64url')}`;
}

const now = () => Math.floor(Date.now() / 1000);

// The long-lived project keys Supabase hands out: anon and service_role.
export function projectKey(role, secret) {
  return signHs256({ iss: 'supabase-local', role, iat: now(), exp: now() + 10 * 365 * 24 * 3600 }, secret);
}

export const userClaims = ({ id, email }, ttlSeconds = 24 * 3600) =>
  ({ iss: 'supabase-local', aud: 'authenticated', role: 'authenticated', sub: id, email, iat: now(), exp: now() + ttlSeconds, aal: 'aal1', session_id: id });

// An access token like the one Supabase Auth issues to a signed-in user (legacy HS256 secret).
export function userToken(user, secret, ttlSeconds) {
  return signHs256(userClaims(user, ttlSeconds), secret);
}
