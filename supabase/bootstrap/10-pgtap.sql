-- pgTAP for the database tests (supabase test db installs it the same way on a hosted project's branch).
create extension if not exists pgtap with schema extensions;
