/* PgCrab's version: printed by --version, reported by the admin console. */
#ifndef PGCRAB_VERSION_H
#define PGCRAB_VERSION_H

#define PGCRAB_VERSION "0.1.0"

#endif
