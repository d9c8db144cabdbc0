/*
 * procstat: the process's own resource use, for the standard process_*
 * metrics.  Read at scrape time only (it reads /proc/self, which the
 * service unit's ProcSubset=pid keeps visible).
 */
#ifndef BRIDGE_PROCSTAT_H
#define BRIDGE_PROCSTAT_H

#include <stdint.h>

struct procstat {
	double cpu_s;               /* user and system time */
	uint64_t rss_bytes;         /* 0 when /proc could not be read */
	uint64_t vsize_bytes;
	int64_t open_fds;           /* -1 when /proc could not be read */
	uint64_t max_fds;           /* the soft limit */
};

/* Notes the start time; call once, early. */
void procstat_init(void);
/* Seconds since the epoch when procstat_init() ran. */
double procstat_start_time(void);
void procstat_read(struct procstat *p);

#endif
