-- The list indexes of the read models, ascending. Lists still read newest first:
-- both backends walk an index backwards for `ORDER BY sort DESC, key DESC`.
-- What changes is where a new document's entry lands. Documents mostly arrive
-- newest (largest `sort`) last. In a descending index SQLite puts each entry at
-- the front of its group, and a full page splits leaving both halves about half
-- empty; ascending, the entry goes at the end, and the split leaves the old page
-- full. On SQLite, with a run document per request, the three indexes an
-- `invocations` document enters take 45% fewer pages, and every recorded run
-- writes correspondingly fewer. PostgreSQL fills its pages either way (the same
-- size, measured); the migration keeps both backends' schemas alike.
DROP INDEX read_models_sort;
DROP INDEX read_models_app;
DROP INDEX read_models_tag1;
DROP INDEX read_models_tag2;
CREATE INDEX read_models_sort ON read_models (collection, sort, key)
    WHERE collection <> 'invocations';
CREATE INDEX read_models_app ON read_models (collection, app, sort, key);
CREATE INDEX read_models_tag1 ON read_models (collection, tag1, sort, key);
CREATE INDEX read_models_tag2 ON read_models (collection, tag2, sort, key);
