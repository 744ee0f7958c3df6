--
-- The extension itself: every other test file needs it.
--
CREATE EXTENSION qleaf_fdw;

SELECT extversion FROM pg_extension WHERE extname = 'qleaf_fdw';
SELECT fdwname, fdwhandler::regproc, fdwvalidator::regproc
FROM pg_foreign_data_wrapper WHERE fdwname = 'qleaf_fdw';

-- the settings, and the reserved prefix
SHOW qleaf_fdw.batch_size;
SHOW qleaf_fdw.enable_pushdown;
SET qleaf_fdw.batch_size = -1;
SET qleaf_fdw.no_such_setting = 1;
