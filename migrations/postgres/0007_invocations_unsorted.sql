-- `invocations` documents (one per run) are listed per app only: by
-- `read_models_app`, and by status or script through the tag indexes, never
-- across apps newest first. The collection-wide index now leaves them out, one
-- b-tree entry fewer for every run recorded. A query that may use this index says
-- `collection <> 'invocations'` in so many words (`sql::doc_query`): its
-- collection is a bound parameter, from which SQLite cannot prove the condition,
-- nor PostgreSQL on a generic plan.
DROP INDEX read_models_sort;
CREATE INDEX read_models_sort ON read_models (collection, sort DESC, key DESC)
    WHERE collection <> 'invocations';
