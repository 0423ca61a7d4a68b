-- The columns of prebuilds_plan(?), the eponymous virtual table over a pass's plan
-- (src/lib/sqlite/entries.c declares it with sqlite3_declare_vtab; its column numbers
-- follow this order): the entry's index, the organization id as text, the kinds of row the
-- plan wants, the kinds already added, and the hidden argument that binds the plan.
CREATE TABLE x(i INTEGER, id TEXT, kinds INTEGER, added INTEGER, plan HIDDEN)
