# qleaf_fdw: a PostgreSQL foreign data wrapper for MongoDB
#
# Built with PGXS against libmongoc/libbson found through pkg-config.
# Our own sources build with -Wall -Wextra -Werror.

MODULE_big = qleaf_fdw
OBJS = $(patsubst %.c,%.o,$(sort $(wildcard src/*.c)))

EXTENSION = qleaf_fdw
DATA = $(sort $(wildcard qleaf_fdw--*.sql))
PGFILEDESC = "qleaf_fdw - foreign data wrapper for MongoDB"

PG_CPPFLAGS += $(shell pkg-config --cflags libmongoc-1.0)
SHLIB_LINK += $(shell pkg-config --libs libmongoc-1.0)
PG_CFLAGS += -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers

# "init" creates the extension and the server; every other file is
# self-contained and runs in name order.
REGRESS = init $(filter-out init,$(sort $(basename $(notdir $(wildcard sql/*.sql)))))
REGRESS_OPTS = --inputdir=.
TAP_TESTS = 1

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# The TAP tests alone: PGXS runs them only as part of installcheck, after
# pg_regress.
.PHONY: prove_installcheck
prove_installcheck:
	$(prove_installcheck)
