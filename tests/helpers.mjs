// Shared by the end-to-end tests: the running test stack's status, typed calls to the workers,
// PostgREST as service_role for arranging and checking state, and the stand-in's controls.
import { readFileSync } from 'node:fs';

const statusPath = process.env.STACK_STATUS;
if (!statusPath) throw new Error('STACK_STATUS is not set: run the end-to-end tests through npm test');
export const stack = JSON.parse(readFileSync(statusPath, 'utf8'));

export const user = (role, index = 0) => stack.users.filter((u) => u.role === role)[index];
export const userByEmail = (email) => stack.users.find((u) => u.email === email);

// Calls a worker; `token` is sent as a bearer token, `body` as JSON.
export async function call(fn, path, { method = 'GET', body, token, headers = {} } = {}) {
  const response = await fetch(`${stack.functions[fn]}${path}`, {
    method,
    headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...(token ? { authorization: `Bearer ${token}` } : {}), ...headers },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await response.text();
  let json;
  try { json = text ? JSON.parse(text) : undefined; } catch { json = undefined; }
  return { status: response.status, headers: response.headers, json, text };
}

// PostgREST as service_role (bypasses RLS): for arranging fixtures and checking what was written.
export async function rest(path, { method = 'GET', body, prefer, token = stack.service_role_key } = {}) {
  const response = await fetch(`${stack.postgrest_url}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, apikey: stack.anon_key, 'content-type': 'application/json', ...(prefer ? { prefer } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`PostgREST ${method} ${path} answered ${response.status}: ${text}`);
  return text ? JSON.parse(text) : undefined;
}

export const standin = {
  reset: () => fetch(`${stack.standin_url}/__standin/reset`, { method: 'POST' }),
  requests: async (service) => (await fetch(`${stack.standin_url}/__standin/requests${service ? `?service=${service}` : ''}`)).json(),
  emails: async () => (await fetch(`${stack.standin_url}/__standin/emails`)).json(),
  fail: (service, status = 500, times = 1) =>
    fetch(`${stack.standin_url}/__standin/fail`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ service, status, times }) }),
};
