-- Seed data: filled in with the schema.
select 1;
