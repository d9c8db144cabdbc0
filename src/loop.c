#include "loop.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

uint64_t loop_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t loop_cached_us;

static void loop_tick(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	loop_cached_us = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t loop_time_us(void)
{
	return loop_cached_us;
}

int loop_init(struct loop *l, const int *signals, loop_signal_fn fn, void *arg)
{
	sigset_t set;

	memset(l, 0, sizeof(*l));
	l->sigfd = -1;
	sigemptyset(&set);
	for (const int *s = signals; s && *s; s++)
		sigaddset(&set, *s);
	if (sigprocmask(SIG_BLOCK, &set, NULL) != 0)
		return -1;
	l->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (l->sigfd < 0)
		return -1;
	l->sig_fn = fn;
	l->sig_arg = arg;
	return 0;
}

void loop_fini(struct loop *l)
{
	if (l->sigfd >= 0)
		close(l->sigfd);
	l->sigfd = -1;
	l->timers = NULL;
	l->nfds = 0;
}

void loop_set_prepare(struct loop *l, loop_prepare_fn fn, void *arg)
{
	l->prepare_fn = fn;
	l->prepare_arg = arg;
}

static struct loop_fd *loop_fd_find(struct loop *l, int fd)
{
	for (int i = 0; i < l->nfds; i++)
		if (l->fds[i].fd == fd)
			return &l->fds[i];
	return NULL;
}

int loop_fd_add(struct loop *l, int fd, short events, loop_fd_fn fn, void *arg)
{
	struct loop_fd *f = loop_fd_find(l, fd);

	if (!f) {
		if (l->nfds == LOOP_MAX_FDS)
			return -1;
		f = &l->fds[l->nfds++];
	}
	f->fd = fd;
	f->events = events;
	f->fn = fn;
	f->arg = arg;
	return 0;
}

void loop_fd_events(struct loop *l, int fd, short events)
{
	struct loop_fd *f = loop_fd_find(l, fd);

	if (f)
		f->events = events;
}

void loop_fd_del(struct loop *l, int fd)
{
	struct loop_fd *f = loop_fd_find(l, fd);

	if (!f)
		return;
	*f = l->fds[--l->nfds];
}

void loop_timer_init(struct loop_timer *t, loop_timer_fn fn, void *arg)
{
	memset(t, 0, sizeof(*t));
	t->fn = fn;
	t->arg = arg;
}

void loop_timer_disarm(struct loop *l, struct loop_timer *t)
{
	struct loop_timer **p;

	if (!t->armed)
		return;
	for (p = &l->timers; *p; p = &(*p)->next) {
		if (*p == t) {
			*p = t->next;
			break;
		}
	}
	t->armed = false;
	t->next = NULL;
}

void loop_timer_arm(struct loop *l, struct loop_timer *t, uint64_t delay_ms)
{
	struct loop_timer **p;

	loop_timer_disarm(l, t);
	t->due_ms = loop_now_ms() + delay_ms;
	for (p = &l->timers; *p && (*p)->due_ms <= t->due_ms; p = &(*p)->next)
		;
	t->next = *p;
	*p = t;
	t->armed = true;
}

static void loop_run_timers(struct loop *l)
{
	uint64_t now = loop_now_ms();

	while (l->timers && l->timers->due_ms <= now) {
		struct loop_timer *t = l->timers;

		l->timers = t->next;
		t->next = NULL;
		t->armed = false;
		t->fn(t->arg);
	}
}

static void loop_read_signals(struct loop *l)
{
	struct signalfd_siginfo si;

	while (read(l->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (l->sig_fn)
			l->sig_fn(l->sig_arg, (int)si.ssi_signo);
	}
}

void loop_run_once(struct loop *l)
{
	struct pollfd pfd[LOOP_MAX_FDS + 1];
	struct loop_fd snapshot[LOOP_MAX_FDS];
	int n = 0, timeout = -1, rc;
	bool busy = false;

	loop_tick();
	if (l->prepare_fn)
		busy = l->prepare_fn(l->prepare_arg);
	if (l->stop)
		return;
	if (busy) {
		timeout = 0;
	} else if (l->timers) {
		uint64_t now = loop_now_ms();

		timeout = l->timers->due_ms <= now ? 0 : (int)(l->timers->due_ms - now);
	}

	/* Callbacks may add or remove fds; dispatch from a snapshot. */
	memcpy(snapshot, l->fds, sizeof(snapshot));
	for (int i = 0; i < l->nfds; i++) {
		pfd[n].fd = l->fds[i].fd;
		pfd[n].events = l->fds[i].events;
		pfd[n].revents = 0;
		n++;
	}
	int nwatched = n;
	pfd[n].fd = l->sigfd;
	pfd[n].events = POLLIN;
	pfd[n].revents = 0;
	n++;

	rc = poll(pfd, (nfds_t)n, timeout);
	loop_tick();
	if (rc < 0 && errno != EINTR)
		log_warn("loop: poll: %s", strerror(errno));
	if (rc > 0) {
		if (pfd[nwatched].revents)
			loop_read_signals(l);
		for (int i = 0; i < nwatched; i++) {
			if (!pfd[i].revents)
				continue;
			/* Skip fds that an earlier callback in this round removed. */
			struct loop_fd *f = loop_fd_find(l, pfd[i].fd);
			if (!f || f->fn != snapshot[i].fn || f->arg != snapshot[i].arg)
				continue;
			f->fn(f->arg, pfd[i].fd, pfd[i].revents);
		}
	}
	loop_run_timers(l);
}
