#include "procstat.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static double started;

void procstat_init(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	started = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double procstat_start_time(void)
{
	return started;
}

static int64_t procstat_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int64_t n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	/* Not the directory's own descriptor. */
	return n - 1;
}

void procstat_read(struct procstat *p)
{
	struct rusage ru;
	struct rlimit rl;
	unsigned long long size = 0, resident = 0;
	long page = sysconf(_SC_PAGESIZE);
	FILE *f;

	memset(p, 0, sizeof(*p));
	if (getrusage(RUSAGE_SELF, &ru) == 0)
		p->cpu_s = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
		           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
		p->max_fds = rl.rlim_cur == RLIM_INFINITY ? 0 : (uint64_t)rl.rlim_cur;
	f = fopen("/proc/self/statm", "re");
	if (f) {
		if (fscanf(f, "%llu %llu", &size, &resident) == 2 && page > 0) {
			p->vsize_bytes = size * (unsigned long long)page;
			p->rss_bytes = resident * (unsigned long long)page;
		}
		fclose(f);
	}
	p->open_fds = procstat_fds();
}
