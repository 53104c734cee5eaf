/* One event per line on stderr with a UTC timestamp and level, for journald.
 * The level check happens before any formatting. */
#ifndef PGCRAB_LOG_H
#define PGCRAB_LOG_H

#include <stdatomic.h>

#include "config/cfg.h"

extern _Atomic int log_threshold;

void log_emit(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_at(level, ...)                                                                      \
	do {                                                                                    \
		if ((int)(level) <= atomic_load_explicit(&log_threshold, memory_order_relaxed)) \
			log_emit((level), __VA_ARGS__);                                         \
	} while (0)
/* whether a line at this level would be written: skip the work behind it */
#define log_enabled(level) \
	((int)(level) <= atomic_load_explicit(&log_threshold, memory_order_relaxed))
#define log_error(...) log_at(CFG_LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  log_at(CFG_LOG_WARN, __VA_ARGS__)
#define log_info(...)  log_at(CFG_LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_at(CFG_LOG_DEBUG, __VA_ARGS__)

#endif
