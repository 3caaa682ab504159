// The TypeScript baseline of the speed comparison: a worker making the same PostgREST request
// as find-experts (`GET /?skills=...` -> `POST /rpc/find_experts`) and the same /health probe,
// with @supabase/postgrest-js. Only the benchmark builds and runs it.
import { PostgrestClient } from '@supabase/postgrest-js';

interface Env {
  POSTGREST_URL: string;
  SUPABASE_ANON_KEY: string;
}

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const url = new URL(request.url);
    if (url.pathname === '/health') {
      const probe = await fetch(`${env.POSTGREST_URL}/rpc/health`, { headers: { apikey: env.SUPABASE_ANON_KEY, authorization: `Bearer ${env.SUPABASE_ANON_KEY}` } });
      return Response.json({ name: 'ts-find-experts', postgrest: { reachable: probe.status < 500, status: probe.status } });
    }
    const skills = (url.searchParams.get('skills') ?? '').split(',').filter(Boolean);
    if (skills.length === 0) return Response.json({ error: { code: 'validation_failed', message: 'skills is required', details: {} } }, { status: 400 });
    const client = new PostgrestClient(env.POSTGREST_URL, { headers: { apikey: env.SUPABASE_ANON_KEY, authorization: `Bearer ${env.SUPABASE_ANON_KEY}` } });
    const { data, error } = await client.rpc('find_experts', { skills, duration_minutes: 60, page_size: 10 });
    if (error) return Response.json({ error: { code: 'upstream', message: error.message, details: {} } }, { status: 502 });
    return Response.json({ experts: data.experts, match_request_id: data.match_request_id });
  },
};
